"""Control-vector files: llama.cpp's GGUF format for persona vectors, read and written.

A llama.cpp control vector is a GGUF file (version 3, little-endian) holding:

- ``general.architecture = "controlvector"``;
- ``controlvector.model_hint``: the model's architecture ("llama", "gemma3");
- ``controlvector.layer_count``: the number of direction tensors (int32, as
  llama.cpp's ``cvector-generator`` writes it);
- one tensor ``direction.N`` per steered block ``N >= 1``: 1-D, F32, ``n_embd``
  values, added by llama.cpp to the output of block ``N`` (``l_out-N``).

llama.cpp reads only the tensors. simulacra adds its own metadata as string and
int32 keys under the ``simulacra.`` prefix (name, method, model name and
sha256, prompts hash, layers, width, directions hash, package version, and
``simulacra.meta.<key>`` for free metadata), so a :class:`PersonaVector` written
here reads back identical. Files from other tools (``cvector-generator``,
repeng) read as vectors with method ``"imported"``.

Why a small writer of our own rather than the ``gguf`` package: the subset
needed (strings, int32 and 1-D F32 tensors) is about a hundred lines; owning it
keeps the runtime free of a dependency whose writer API changes between
llama.cpp releases, lets the file be written to a temporary sibling and renamed
(a reader never sees a half-written file), and lets the reader check exactly
what llama.cpp's ``common_control_vector_load_one`` checks, with messages that
name the file and the tensor. The tests read our files back with ggml's own C
parser and with ``gguf.GGUFReader``.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from simulacra.errors import VectorError
from simulacra.vectors.persona_vector import PersonaVector, directions_sha256

__all__ = [
    "ARCHITECTURE",
    "GGUF_VERSION",
    "encode_control_vector",
    "read_control_vector",
    "read_gguf_metadata",
    "write_control_vector",
]

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
ARCHITECTURE = "controlvector"
ALIGNMENT = 32
GGML_TYPE_F32 = 0
_META_PREFIX = "simulacra.meta."
_DIRECTION_NAME = re.compile(r"direction\.(\d+)")

# GGUF value types (gguf.h: enum gguf_type) and their struct formats.
_UINT8, _INT8, _UINT16, _INT16, _UINT32, _INT32, _FLOAT32, _BOOL = range(8)
_STRING, _ARRAY, _UINT64, _INT64, _FLOAT64 = range(8, 13)
_SCALAR_FORMATS = {
    _UINT8: "<B",
    _INT8: "<b",
    _UINT16: "<H",
    _INT16: "<h",
    _UINT32: "<I",
    _INT32: "<i",
    _FLOAT32: "<f",
    _BOOL: "<?",
    _UINT64: "<Q",
    _INT64: "<q",
    _FLOAT64: "<d",
}


def _package_version() -> str:
    try:
        return metadata.version("simulacra")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


# --------------------------------------------------------------------------- writing


def _string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


def _kv_string(key: str, value: str) -> bytes:
    return _string(key) + struct.pack("<I", _STRING) + _string(value)


def _kv_int32(key: str, value: int) -> bytes:
    return _string(key) + struct.pack("<I", _INT32) + struct.pack("<i", value)


def _padding(size: int) -> bytes:
    return b"\0" * (-size % ALIGNMENT)


def _metadata_items(vector: PersonaVector, layers: tuple[int, ...]) -> list[bytes]:
    rows = np.stack([vector.direction(b) for b in layers])
    items = [
        _kv_string("general.architecture", ARCHITECTURE),
        _kv_string(f"{ARCHITECTURE}.model_hint", vector.architecture),
        _kv_int32(f"{ARCHITECTURE}.layer_count", len(layers)),
        _kv_string("simulacra.version", _package_version()),
        _kv_string("simulacra.name", vector.name),
        _kv_string("simulacra.method", vector.method),
        _kv_string("simulacra.model_name", vector.model_name),
        _kv_string("simulacra.model_sha256", vector.model_sha256),
        _kv_string("simulacra.prompts_sha256", vector.prompts_sha256),
        _kv_string("simulacra.layers", ",".join(str(b) for b in layers)),
        _kv_int32("simulacra.n_embd", vector.n_embd),
        _kv_string("simulacra.directions_sha256", directions_sha256(rows, layers)),
    ]
    items += [_kv_string(_META_PREFIX + key, value) for key, value in sorted(vector.meta.items())]
    return items


def encode_control_vector(vector: PersonaVector) -> bytes:
    """The bytes of a control-vector GGUF file for ``vector`` (every layer must be >= 1).

    Raises:
        VectorError: if the vector has a direction at block 0.

    """
    if 0 in vector.layers:
        raise VectorError(
            f"persona vector {vector.name!r} has a direction at layer 0: llama.cpp cannot steer "
            "block 0, so a control-vector file cannot hold it"
        )
    layers = vector.layers
    kv = _metadata_items(vector, layers)
    infos = []
    offset = 0
    row_bytes = vector.n_embd * 4
    for layer in layers:
        infos.append(
            _string(f"direction.{layer}")
            + struct.pack("<I", 1)
            + struct.pack("<Q", vector.n_embd)
            + struct.pack("<I", GGML_TYPE_F32)
            + struct.pack("<Q", offset)
        )
        offset += row_bytes + len(_padding(row_bytes))
    header = GGUF_MAGIC + struct.pack("<IQQ", GGUF_VERSION, len(layers), len(kv))
    head = header + b"".join(kv) + b"".join(infos)
    parts = [head, _padding(len(head))]
    for layer in layers:
        row = np.ascontiguousarray(vector.direction(layer), dtype="<f4").tobytes()
        parts += [row, _padding(len(row))]
    return b"".join(parts)


def write_control_vector(
    vector: PersonaVector, path: str | os.PathLike[str], *, drop_layer_zero: bool = False
) -> Path:
    """Write ``vector`` as a llama.cpp control-vector GGUF file, atomically.

    The bytes go to a temporary file in the target's directory, are flushed to disk
    and renamed over ``path``: a reader sees the old file or the new one, never a
    partial one.

    Args:
        vector: the persona vector; its directions are written as they are
            (scale them first with :meth:`PersonaVector.scaled` if wanted).
        path: the ``.gguf`` file to write.
        drop_layer_zero: leave out a direction at block 0 (which llama.cpp cannot
            steer) instead of refusing the vector.

    Returns:
        The path written.

    Raises:
        VectorError: if the vector has a direction at block 0 and
            ``drop_layer_zero`` is False, or has no other layer.

    """
    target = Path(path)
    if 0 in vector.layers:
        others = [b for b in vector.layers if b != 0]
        if not drop_layer_zero:
            raise VectorError(
                f"{target}: persona vector {vector.name!r} has a direction at layer 0, which "
                "llama.cpp cannot steer; pass drop_layer_zero=True or restrict the vector to "
                "layers >= 1"
            )
        if not others:
            raise VectorError(
                f"{target}: persona vector {vector.name!r} has only layer 0, which llama.cpp "
                "cannot steer: nothing to write"
            )
        vector = vector.restricted(others)
    data = encode_control_vector(vector)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return target


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _TensorInfo:
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int


class _Cursor:
    """Sequential little-endian reads over a file's bytes, with truncation errors."""

    def __init__(self, data: bytes, source: str) -> None:
        self.data = data
        self.source = source
        self.pos = 0

    def take(self, size: int, what: str) -> bytes:
        end = self.pos + size
        if size < 0 or end > len(self.data):
            raise VectorError(
                f"{self.source}: truncated GGUF file: {what} at byte {self.pos} needs {size} "
                f"bytes, the file has {len(self.data) - self.pos} left"
            )
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def scalar(self, fmt: str, what: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]

    def string(self, what: str) -> str:
        size = self.scalar("<Q", f"length of {what}")
        raw = self.take(size, what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise VectorError(f"{self.source}: {what} is not valid UTF-8") from exc

    def value(self, value_type: int, key: str) -> Any:
        if value_type == _STRING:
            return self.string(f"value of {key}")
        if value_type == _ARRAY:
            item_type = self.scalar("<I", f"array type of {key}")
            count = self.scalar("<Q", f"array length of {key}")
            if count > len(self.data):
                raise VectorError(f"{self.source}: array {key} claims {count} items")
            return [self.value(item_type, key) for _ in range(count)]
        fmt = _SCALAR_FORMATS.get(value_type)
        if fmt is None:
            raise VectorError(f"{self.source}: key {key} has unknown GGUF value type {value_type}")
        return self.scalar(fmt, f"value of {key}")


def _parse(data: bytes, source: str) -> tuple[dict[str, Any], list[_TensorInfo], int]:
    """The key-value pairs, tensor infos and data-section offset of a GGUF file."""
    cursor = _Cursor(data, source)
    magic = cursor.take(4, "magic")
    if magic != GGUF_MAGIC:
        raise VectorError(f"{source}: not a GGUF file (starts with {magic!r}, expected b'GGUF')")
    version = cursor.scalar("<I", "version")
    if version not in (2, 3):
        raise VectorError(f"{source}: GGUF version {version} is not supported (expected 2 or 3)")
    n_tensors = cursor.scalar("<Q", "tensor count")
    n_kv = cursor.scalar("<Q", "key-value count")
    if n_tensors > len(data) or n_kv > len(data):
        raise VectorError(f"{source}: corrupt header ({n_tensors} tensors, {n_kv} keys)")
    kv: dict[str, Any] = {}
    for _ in range(n_kv):
        key = cursor.string("key")
        value_type = cursor.scalar("<I", f"type of {key}")
        kv[key] = cursor.value(value_type, key)
    tensors = []
    for _ in range(n_tensors):
        name = cursor.string("tensor name")
        n_dims = cursor.scalar("<I", f"dimension count of {name}")
        if not 1 <= n_dims <= 4:
            raise VectorError(f"{source}: tensor {name!r} has {n_dims} dimensions (1 to 4 allowed)")
        shape = tuple(cursor.scalar("<Q", f"shape of {name}") for _ in range(n_dims))
        ggml_type = cursor.scalar("<I", f"type of {name}")
        offset = cursor.scalar("<Q", f"offset of {name}")
        tensors.append(_TensorInfo(name, shape, ggml_type, offset))
    alignment = kv.get("general.alignment", ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise VectorError(f"{source}: general.alignment must be a power of 2, got {alignment!r}")
    data_start = cursor.pos + (-cursor.pos % alignment)
    return kv, tensors, data_start


def _direction_layer(info: _TensorInfo, source: str) -> int:
    match = _DIRECTION_NAME.fullmatch(info.name)
    if match is None:
        raise VectorError(
            f"{source}: tensor {info.name!r}: invalid direction tensor name, expected "
            "'direction.N' with N the block index"
        )
    layer = int(match.group(1))
    if layer == 0:
        raise VectorError(
            f"{source}: tensor {info.name!r}: layer index 0 is invalid (llama.cpp cannot steer "
            "block 0; direction tensors start at direction.1)"
        )
    return layer


def _effective_dims(shape: tuple[int, ...]) -> int:
    """The dimension count as ``ggml_n_dims`` sees it: trailing 1s do not count; at least 1."""
    dims = len(shape)
    while dims > 1 and shape[dims - 1] == 1:
        dims -= 1
    return dims


def _read_directions(
    data: bytes, tensors: list[_TensorInfo], data_start: int, source: str
) -> dict[int, np.ndarray]:
    """Validate the tensors as llama.cpp does and return the summed direction per layer."""
    if not tensors:
        raise VectorError(f"{source}: no direction tensors found")
    directions: dict[int, np.ndarray] = {}
    n_embd = -1
    for info in tensors:
        layer = _direction_layer(info, source)
        if info.ggml_type != GGML_TYPE_F32:
            raise VectorError(
                f"{source}: tensor {info.name!r} has ggml type {info.ggml_type}, expected F32 "
                f"(type {GGML_TYPE_F32})"
            )
        if _effective_dims(info.shape) != 1:
            raise VectorError(
                f"{source}: tensor {info.name!r} has shape {list(info.shape)}, expected 1-D"
            )
        length = int(np.prod(info.shape))
        if n_embd == -1:
            n_embd = length
        elif length != n_embd:
            raise VectorError(
                f"{source}: tensor {info.name!r} has {length} values, but earlier direction "
                f"tensors have {n_embd}: all must have n_embd values"
            )
        start = data_start + info.offset
        if start + 4 * length > len(data):
            raise VectorError(
                f"{source}: truncated GGUF file: tensor {info.name!r} needs bytes "
                f"{start}..{start + 4 * length}, the file has {len(data)}"
            )
        row = np.frombuffer(data, dtype="<f4", count=length, offset=start).astype(np.float32)
        # llama.cpp sums several tensors aimed at the same block (direction.5, direction.05).
        directions[layer] = directions[layer] + row if layer in directions else row
    return directions


def read_gguf_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Every key-value pair of a GGUF file (arrays as lists), without reading tensors.

    Raises:
        VectorError: if the file cannot be read or is not a well-formed GGUF file.

    """
    source = str(path)
    return _parse(_read_bytes(path), source)[0]


def _read_bytes(path: str | os.PathLike[str]) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise VectorError(f"{path}: cannot read the control-vector file: {exc.strerror}") from exc


def _text(kv: Mapping[str, Any], key: str, default: str, source: str) -> str:
    value = kv.get(key, default)
    if not isinstance(value, str):
        raise VectorError(f"{source}: {key} must be a string, got {value!r}")
    return value


def _check_simulacra_keys(
    kv: Mapping[str, Any], directions: dict[int, np.ndarray], source: str
) -> None:
    """Cross-check the simulacra metadata against the tensors, if it is there."""
    layers = sorted(directions)
    if "simulacra.layers" in kv:
        recorded = _text(kv, "simulacra.layers", "", source)
        if recorded != ",".join(str(b) for b in layers):
            raise VectorError(
                f"{source}: simulacra.layers says {recorded!r} but the file holds direction "
                f"tensors for layers {layers}"
            )
    width = next(iter(directions.values())).size
    if "simulacra.n_embd" in kv and kv["simulacra.n_embd"] != width:
        raise VectorError(
            f"{source}: simulacra.n_embd says {kv['simulacra.n_embd']!r} but the direction "
            f"tensors have {width} values"
        )
    if "simulacra.directions_sha256" in kv:
        recorded = _text(kv, "simulacra.directions_sha256", "", source)
        actual = directions_sha256(np.stack([directions[b] for b in layers]), layers)
        if recorded != actual:
            raise VectorError(
                f"{source}: simulacra.directions_sha256 does not match the direction tensors: "
                "the values were changed after simulacra wrote the file"
            )


def read_control_vector(path: str | os.PathLike[str]) -> PersonaVector:
    """Read a llama.cpp control-vector GGUF file as a :class:`PersonaVector`.

    The tensors are validated as llama.cpp's loader does: every tensor must be
    named ``direction.N`` with ``N >= 1``, be F32 and 1-D, and all must have the
    same length; tensors aimed at the same block are summed. A file written by
    simulacra reads back identical (its metadata is cross-checked against the
    tensors); any other control vector gets its name from the file name and method
    ``"imported"``.

    Args:
        path: the ``.gguf`` file.

    Returns:
        The persona vector, its layers the direction indices.

    Raises:
        VectorError: naming the file (and the tensor or key) if it cannot be read,
            is not a well-formed GGUF file, is another kind of GGUF file, or breaks
            one of the rules above.

    """
    source = str(path)
    data = _read_bytes(path)
    kv, tensors, data_start = _parse(data, source)
    architecture = kv.get("general.architecture", ARCHITECTURE)
    if architecture != ARCHITECTURE:
        raise VectorError(
            f"{source}: general.architecture is {architecture!r}: this is not a control-vector "
            f"file (expected {ARCHITECTURE!r})"
        )
    directions = _read_directions(data, tensors, data_start, source)
    _check_simulacra_keys(kv, directions, source)
    layers = sorted(directions)
    meta = {
        key[len(_META_PREFIX) :]: _text(kv, key, "", source)
        for key in kv
        if key.startswith(_META_PREFIX)
    }
    try:
        return PersonaVector(
            directions=np.stack([directions[b] for b in layers]),
            layers=tuple(layers),
            name=_text(kv, "simulacra.name", Path(source).stem, source),
            method=_text(kv, "simulacra.method", "imported", source),
            model_name=_text(kv, "simulacra.model_name", "", source),
            model_sha256=_text(kv, "simulacra.model_sha256", "", source),
            architecture=_text(kv, f"{ARCHITECTURE}.model_hint", "", source),
            prompts_sha256=_text(kv, "simulacra.prompts_sha256", "", source),
            meta=meta,
        )
    except ValueError as exc:
        raise VectorError(f"{source}: {exc}") from exc
