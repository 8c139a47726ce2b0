"""llama.cpp's own GGUF parser (ggml's C gguf API in libggml-base), reached through ctypes.

:func:`load_like_llama_cpp` repeats what llama.cpp's ``common_control_vector_load_one``
does with a control-vector file: ``gguf_init_from_file`` with tensor data loaded into
a ggml context, then per tensor its name, ``ggml_get_tensor``, type, ``ggml_n_dims``,
``ggml_nelements`` and ``ggml_get_data_f32``.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

from simulacra.llm.activations import TensorHead, ggml_base_path

GGUF_TYPE_INT32 = 5
GGUF_TYPE_STRING = 8


class GgufInitParams(ctypes.Structure):
    _fields_ = (("no_alloc", ctypes.c_bool), ("ctx", ctypes.POINTER(ctypes.c_void_p)))


def _library() -> ctypes.CDLL:
    lib = ctypes.CDLL(str(ggml_base_path()))  # its own function objects: prototypes stay local
    p, i64 = ctypes.c_void_p, ctypes.c_int64
    signatures = {
        "gguf_init_from_file": ([ctypes.c_char_p, GgufInitParams], p),
        "gguf_free": ([p], None),
        "gguf_get_version": ([p], ctypes.c_uint32),
        "gguf_get_n_tensors": ([p], i64),
        "gguf_get_tensor_name": ([p, i64], ctypes.c_char_p),
        "gguf_get_tensor_type": ([p, i64], ctypes.c_int),
        "gguf_find_key": ([p, ctypes.c_char_p], i64),
        "gguf_get_kv_type": ([p, i64], ctypes.c_int),
        "gguf_get_val_str": ([p, i64], ctypes.c_char_p),
        "gguf_get_val_i32": ([p, i64], ctypes.c_int32),
        "ggml_get_tensor": ([p, ctypes.c_char_p], p),
        "ggml_n_dims": ([p], ctypes.c_int),
        "ggml_nelements": ([p], i64),
        "ggml_get_data_f32": ([p], ctypes.POINTER(ctypes.c_float)),
        "ggml_free": ([p], None),
    }
    for name, (argtypes, restype) in signatures.items():
        function = getattr(lib, name)
        function.argtypes = argtypes
        function.restype = restype
    return lib


LIB = _library()


@dataclass
class LoadedFile:
    """What llama.cpp's parser saw in a file."""

    version: int
    strings: dict[str, str]
    ints: dict[str, int]
    tensors: dict[str, tuple[int, int, np.ndarray]]  # name -> (ggml type, n_dims, values)


def read_with_ggml(path, keys=()) -> LoadedFile | None:
    """Parse ``path`` with ggml's gguf reader; None if the parser refuses the file."""
    ctx = ctypes.c_void_p()
    params = GgufInitParams(False, ctypes.pointer(ctx))
    gguf = LIB.gguf_init_from_file(str(path).encode(), params)
    if not gguf:
        return None
    try:
        strings, ints = {}, {}
        for key in keys:
            kid = LIB.gguf_find_key(gguf, key.encode())
            if kid < 0:
                continue
            kind = LIB.gguf_get_kv_type(gguf, kid)
            if kind == GGUF_TYPE_STRING:
                strings[key] = LIB.gguf_get_val_str(gguf, kid).decode()
            elif kind == GGUF_TYPE_INT32:
                ints[key] = LIB.gguf_get_val_i32(gguf, kid)
        tensors = {}
        for index in range(LIB.gguf_get_n_tensors(gguf)):
            name = LIB.gguf_get_tensor_name(gguf, index)
            tensor = LIB.ggml_get_tensor(ctx, name)
            head = TensorHead.from_address(tensor)
            n = LIB.ggml_nelements(tensor)
            values = np.zeros(0, dtype=np.float32)
            if head.type == 0:  # ggml_get_data_f32 is only meaningful for F32
                values = np.ctypeslib.as_array(LIB.ggml_get_data_f32(tensor), shape=(n,)).copy()
            tensors[name.decode()] = (head.type, LIB.ggml_n_dims(tensor), values)
        return LoadedFile(LIB.gguf_get_version(gguf), strings, ints, tensors)
    finally:
        LIB.gguf_free(gguf)
        if ctx:
            LIB.ggml_free(ctx)


def load_like_llama_cpp(path) -> tuple[int, np.ndarray] | None:
    """``common_control_vector_load_one``: (n_embd, buffer from block 1), or None if refused."""
    loaded = read_with_ggml(path)
    if loaded is None or not loaded.tensors:
        return None
    n_embd = -1
    data = np.zeros(0, dtype=np.float32)
    for name, (ggml_type, n_dims, values) in loaded.tensors.items():
        head, _, index = name.partition(".")
        if head != "direction" or not index.lstrip("-").isdigit():
            return None
        layer = int(index)
        if layer <= 0 or ggml_type != 0 or n_dims != 1:
            return None
        if n_embd == -1:
            n_embd = values.size
        elif values.size != n_embd:
            return None
        if data.size < n_embd * layer:
            data = np.concatenate([data, np.zeros(n_embd * layer - data.size, np.float32)])
        data[n_embd * (layer - 1) : n_embd * layer] += values
    return n_embd, data
