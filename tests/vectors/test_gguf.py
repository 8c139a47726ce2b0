"""Control-vector GGUF files: round trips, llama.cpp's own parser, malformed files."""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest
from ggml_gguf import load_like_llama_cpp, read_with_ggml

from simulacra.errors import VectorError
from simulacra.vectors import (
    PersonaVector,
    encode_control_vector,
    read_control_vector,
    read_gguf_metadata,
    write_control_vector,
)

N_EMBD = 576


def make_vector(layers=(1, 7, 12), **fields) -> PersonaVector:
    rng = np.random.default_rng(sum(layers))
    defaults = dict(
        name="pirate",
        method="mean_diff",
        model_name="smollm2-135m-instruct",
        model_sha256="b" * 64,
        architecture="llama",
        prompts_sha256="c" * 64,
        meta={"questions": "12", "note": "Ünïcode ok"},
    )
    rows = rng.normal(scale=30, size=(len(layers), N_EMBD)).astype(np.float32)
    return PersonaVector(rows, tuple(layers), **{**defaults, **fields})


def test_write_read_round_trip_is_exact(tmp_path):
    vector = make_vector()
    path = write_control_vector(vector, tmp_path / "pirate.gguf")
    assert path == tmp_path / "pirate.gguf"
    back = read_control_vector(path)
    assert back == vector
    assert back.sha256 == vector.sha256
    assert dict(back.meta) == dict(vector.meta)
    assert back.architecture == "llama"
    assert [p.name for p in tmp_path.iterdir()] == ["pirate.gguf"]  # no temporary left


def test_llama_cpp_parser_reads_our_file(tmp_path):
    vector = make_vector()
    path = write_control_vector(vector, tmp_path / "v.gguf")
    keys = (
        "general.architecture",
        "controlvector.model_hint",
        "controlvector.layer_count",
        "simulacra.name",
        "simulacra.layers",
        "simulacra.n_embd",
    )
    loaded = read_with_ggml(path, keys)
    assert loaded is not None
    assert loaded.version == 3
    assert loaded.strings["general.architecture"] == "controlvector"
    assert loaded.strings["controlvector.model_hint"] == "llama"
    assert loaded.ints["controlvector.layer_count"] == 3
    assert loaded.strings["simulacra.name"] == "pirate"
    assert loaded.strings["simulacra.layers"] == "1,7,12"
    assert loaded.ints["simulacra.n_embd"] == N_EMBD
    assert sorted(loaded.tensors) == ["direction.1", "direction.12", "direction.7"]
    for layer in vector.layers:
        ggml_type, n_dims, values = loaded.tensors[f"direction.{layer}"]
        assert ggml_type == 0 and n_dims == 1
        np.testing.assert_array_equal(values, vector.direction(layer))
    n_embd, buffer = load_like_llama_cpp(path)
    assert n_embd == N_EMBD and buffer.size == N_EMBD * 12
    np.testing.assert_array_equal(buffer[: N_EMBD * 1], vector.direction(1))
    np.testing.assert_array_equal(buffer[N_EMBD * 6 : N_EMBD * 7], vector.direction(7))
    np.testing.assert_array_equal(buffer[N_EMBD * 1 : N_EMBD * 6], 0)


def test_gguf_package_reads_our_file(tmp_path):
    gguf = pytest.importorskip("gguf")
    vector = make_vector()
    path = write_control_vector(vector, tmp_path / "v.gguf")
    reader = gguf.GGUFReader(path)
    assert reader.get_field("general.architecture").contents() == "controlvector"
    assert reader.get_field("controlvector.model_hint").contents() == "llama"
    assert reader.get_field("controlvector.layer_count").contents() == 3
    assert reader.get_field("simulacra.meta.note").contents() == "Ünïcode ok"
    tensors = {t.name: t for t in reader.tensors}
    for layer in vector.layers:
        tensor = tensors[f"direction.{layer}"]
        assert tensor.tensor_type == gguf.GGMLQuantizationType.F32
        np.testing.assert_array_equal(np.asarray(tensor.data), vector.direction(layer))


def test_files_from_the_gguf_package_read_as_imported_vectors(tmp_path):
    gguf = pytest.importorskip("gguf")
    path = tmp_path / "repeng_style.gguf"
    writer = gguf.GGUFWriter(str(path), "controlvector")
    writer.add_string("controlvector.model_hint", "llama")
    writer.add_uint32("controlvector.layer_count", 2)
    rows = {3: np.full(8, 0.5, np.float32), 5: np.arange(8, dtype=np.float32)}
    for layer, row in rows.items():
        writer.add_tensor(f"direction.{layer}", row)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    vector = read_control_vector(path)
    assert vector.layers == (3, 5) and vector.method == "imported"
    assert vector.name == "repeng_style" and vector.architecture == "llama"
    np.testing.assert_array_equal(vector.direction(5), rows[5])


def test_layer_zero_is_refused_or_dropped(tmp_path):
    vector = make_vector(layers=(0, 4))
    with pytest.raises(VectorError, match=r"v\.gguf.*layer 0.*drop_layer_zero"):
        write_control_vector(vector, tmp_path / "v.gguf")
    assert not list(tmp_path.iterdir())
    write_control_vector(vector, tmp_path / "v.gguf", drop_layer_zero=True)
    assert read_control_vector(tmp_path / "v.gguf") == vector.restricted([4])
    only_zero = make_vector(layers=(0,))
    with pytest.raises(VectorError, match="only layer 0"):
        write_control_vector(only_zero, tmp_path / "z.gguf", drop_layer_zero=True)
    with pytest.raises(VectorError, match="layer 0"):
        encode_control_vector(vector)


def test_writing_replaces_atomically_and_leaves_the_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "v.gguf"
    first = make_vector(layers=(2,))
    write_control_vector(first, path)

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_control_vector(make_vector(layers=(3,)), path)
    monkeypatch.undo()
    assert read_control_vector(path) == first
    assert [p.name for p in tmp_path.iterdir()] == ["v.gguf"]


# --------------------------------------------------------------------------- malformed


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def raw_gguf(tensors, kv=(("general.architecture", "controlvector"),), alignment=32) -> bytes:
    """A GGUF file from (name, shape, ggml type, payload bytes) tensors and string keys."""
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv))
    for key, value in kv:
        head += _string(key) + struct.pack("<I", 8) + _string(value)
    offset = 0
    for name, shape, ggml_type, payload in tensors:
        head += _string(name) + struct.pack("<I", len(shape))
        head += b"".join(struct.pack("<Q", n) for n in shape)
        head += struct.pack("<IQ", ggml_type, offset)
        offset += len(payload) + (-len(payload) % alignment)
    data = head + b"\0" * (-len(head) % alignment)
    for _, _, _, payload in tensors:
        data += payload + b"\0" * (-len(payload) % alignment)
    return data


def f32(n: int, value: float = 1.0) -> bytes:
    return np.full(n, value, dtype="<f4").tobytes()


def write(tmp_path, data: bytes, name: str = "bad.gguf"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_raw_builder_makes_files_both_readers_accept(tmp_path):
    path = write(tmp_path, raw_gguf([("direction.2", (4,), 0, f32(4, 2.0))]), "good.gguf")
    assert load_like_llama_cpp(path)[0] == 4
    vector = read_control_vector(path)
    assert vector.layers == (2,) and vector.method == "imported" and vector.name == "good"


@pytest.mark.parametrize(
    ("tensors", "message"),
    [
        ([("direction.0", (4,), 0, f32(4))], r"direction\.0.*layer index 0"),
        ([("direction.x", (4,), 0, f32(4))], r"direction\.x.*invalid direction tensor name"),
        ([("token_embd.weight", (4,), 0, f32(4))], "invalid direction tensor name"),
        ([("direction.1", (4,), 1, f32(2))], r"direction\.1.*type 1, expected F32"),
        ([("direction.1", (2, 2), 0, f32(4))], r"shape \[2, 2\], expected 1-D"),
        (
            [("direction.1", (4,), 0, f32(4)), ("direction.2", (5,), 0, f32(5))],
            r"direction\.2.*5 values.*earlier direction tensors have 4",
        ),
        ([], "no direction tensors"),
    ],
)
def test_malformed_files_are_refused_like_llama_cpp_does(tmp_path, tensors, message):
    path = write(tmp_path, raw_gguf(tensors))
    assert load_like_llama_cpp(path) is None  # llama.cpp refuses these files too
    with pytest.raises(VectorError, match=message) as info:
        read_control_vector(path)
    assert str(path) in str(info.value)


def test_trailing_unit_axes_are_one_dimensional_as_in_ggml(tmp_path):
    path = write(tmp_path, raw_gguf([("direction.3", (4, 1), 0, f32(4, 0.25))]))
    assert load_like_llama_cpp(path)[0] == 4
    np.testing.assert_array_equal(read_control_vector(path).direction(3), 0.25)


def test_tensors_for_the_same_block_are_summed_as_in_llama_cpp(tmp_path):
    tensors = [("direction.5", (3,), 0, f32(3, 1.0)), ("direction.05", (3,), 0, f32(3, 2.0))]
    path = write(tmp_path, raw_gguf(tensors))
    n_embd, buffer = load_like_llama_cpp(path)
    assert n_embd == 3
    np.testing.assert_array_equal(buffer[12:15], 3.0)
    np.testing.assert_array_equal(read_control_vector(path).direction(5), 3.0)


def test_other_gguf_files_and_garbage_are_refused(tmp_path):
    model = raw_gguf([("direction.1", (4,), 0, f32(4))], kv=(("general.architecture", "llama"),))
    with pytest.raises(VectorError, match="not a control-vector file"):
        read_control_vector(write(tmp_path, model, "model.gguf"))
    with pytest.raises(VectorError, match="not a GGUF file"):
        read_control_vector(write(tmp_path, b"PK\x03\x04 zip", "zip.gguf"))
    good = raw_gguf([("direction.1", (64,), 0, f32(64))])
    with pytest.raises(VectorError, match="truncated"):
        read_control_vector(write(tmp_path, good[:-100], "cut.gguf"))
    with pytest.raises(VectorError, match="truncated"):
        read_control_vector(write(tmp_path, good[:30], "cut_header.gguf"))
    with pytest.raises(VectorError, match="cannot read"):
        read_control_vector(tmp_path / "missing.gguf")


def test_edited_values_fail_the_simulacra_checksum(tmp_path):
    vector = make_vector(layers=(2,))
    data = bytearray(encode_control_vector(vector))
    data[-4:] = struct.pack("<f", 123.0)  # the last value of the last tensor
    path = write(tmp_path, bytes(data))
    assert load_like_llama_cpp(path) is not None  # llama.cpp does not mind
    with pytest.raises(VectorError, match="directions_sha256"):
        read_control_vector(path)


def test_metadata_reader_lists_every_key(tmp_path):
    path = write_control_vector(make_vector(), tmp_path / "v.gguf")
    meta = read_gguf_metadata(path)
    assert meta["general.architecture"] == "controlvector"
    assert meta["controlvector.layer_count"] == 3
    assert meta["simulacra.method"] == "mean_diff"
    assert meta["simulacra.model_sha256"] == "b" * 64
    assert meta["simulacra.prompts_sha256"] == "c" * 64
    assert meta["simulacra.version"]
