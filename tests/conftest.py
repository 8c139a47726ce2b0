"""Shared fixtures: one real engine on the embedded default model for the whole session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from simulacra.llm.engine import Engine

# Subprocesses started by the tests (``python -m simulacra ...``) import this
# checkout's source too, like the tests themselves (pyproject's ``pythonpath``).
_SRC = str(Path(__file__).resolve().parents[1] / "src")
os.environ["PYTHONPATH"] = os.pathsep.join(
    [_SRC, *(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != _SRC)]
)


@pytest.fixture(scope="session")
def engine() -> Engine:
    """The embedded SmolLM2-135M-Instruct model, loaded once per test session."""
    eng = Engine.load(n_ctx=4096)
    yield eng
    eng.close()


@pytest.fixture
def execute_notebook(monkeypatch: pytest.MonkeyPatch):
    """Execute a notebook headless with the given environment; fail on any error output."""
    import nbformat
    from nbclient import NotebookClient

    def execute(path, env: dict[str, str]):
        for key, value in {**env, "MPLBACKEND": "Agg"}.items():
            monkeypatch.setenv(key, value)
        notebook = nbformat.read(path, as_version=4)
        client = NotebookClient(
            notebook,
            timeout=600,
            kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
        )
        client.execute()  # raises CellExecutionError on the first failing cell
        errors = [
            output
            for cell in notebook.cells
            if cell.cell_type == "code"
            for output in cell.get("outputs", [])
            if output.get("output_type") == "error"
        ]
        assert not errors
        return notebook

    return execute
