"""``benchmarks/schema_lines.py``: the line counts of the validation modules (issue 16)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "schema_lines.py"
_spec = importlib.util.spec_from_file_location("schema_lines", SCRIPT)
assert _spec is not None and _spec.loader is not None
schema_lines = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(schema_lines)

SOURCE = '''"""Module docstring,
over two lines."""

# a comment
import os


class A:
    """Class docstring."""

    x: int = 1
    """An attribute docstring (a field's JSON Schema description)."""

    def f(self, a,
          b):  # a comment after code
        return os.path.join(
            a, b
        )


@staticmethod
def g():
    return None
'''


def test_code_lines_leave_out_blanks_comments_and_docstrings():
    code, logical = schema_lines.code_lines(SOURCE)
    assert sorted(code) == [5, 8, 11, 14, 15, 16, 17, 18, 21, 22, 23]
    # one per statement (a decorator is one): import, class, x, def, return, @, def, pass
    assert sorted(logical) == [5, 8, 11, 15, 18, 21, 22, 23]


def test_count_sets_run_time_and_new_feature_definitions_apart():
    counts = schema_lines.count(SOURCE, ("g",), ("A",))
    assert counts["physical"] == len(SOURCE.splitlines()) == 23
    assert (counts["code"], counts["logical"]) == (11, 8)
    runtime = (counts["runtime_physical"], counts["runtime_code"], counts["runtime_logical"])
    assert runtime == (3, 3, 3)
    # class A spans lines 8 to 18: its code on 8, 11, 14-18; statements on 8, 11, 15, 18
    assert (counts["new_physical"], counts["new_code"], counts["new_logical"]) == (11, 7, 4)


def test_count_names_a_run_time_definition_that_is_not_there():
    with pytest.raises(ValueError, match="not defined at the top level: Missing"):
        schema_lines.count(SOURCE, ("A", "Missing"))
    lenient = schema_lines.count(SOURCE, ("g", "Missing"), strict=False)
    assert lenient["runtime_physical"] == 3  # an older revision: the names not there skipped


def test_the_script_counts_the_before_revision_as_wc_does_and_prints_one_json_line():
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    result = json.loads(line)
    before = result["before"]
    for module, counts in before["modules"].items():
        shown = subprocess.run(
            ["git", "show", f"{before['rev']}:src/simulacra/{module}"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        ).stdout
        assert counts["physical"] == len(shown.splitlines())
    for side in ("before", "after"):
        total = result[side]["total"]
        assert total["physical"] == sum(m["physical"] for m in result[side]["modules"].values())
        assert total["validation_logical"] == total["logical"] - total["runtime_logical"]
        assert total["same_features_code"] == total["validation_code"] - total["new_code"]
    assert result["before"]["total"]["new_logical"] == 0  # new features exist only after
    after = result["after"]["total"]
    expected = 1 - after["validation_code"] / before["total"]["validation_code"]
    assert result["reduction"]["validation_code"] == round(expected, 4)


def test_the_script_names_a_revision_that_is_not_a_commit():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--before", "no-such-revision"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert "--before/--after: 'no-such-revision' is not a commit" in done.stderr
    assert "Traceback" not in done.stderr
