"""The llama.cpp backend of this process: initialisation, its log, CPU facts.

llama.cpp is initialised once per process (:func:`init_backend`), with its log
routed to the ``simulacra.llama`` logger (silent unless that logger's level is
lowered). :func:`cpu_has_amx` and :func:`default_threads` are the CPU facts the
engine's defaults depend on.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading

import llama_cpp

__all__ = ["cpu_has_amx", "default_threads", "init_backend", "logger"]

logger = logging.getLogger("simulacra.llama")
logger.setLevel(logging.ERROR)  # llama.cpp is chatty; lower this level to see its log

# ggml's levels: 1 debug, 2 info, 3 warn, 4 error, 5 continuation of the previous line.
_LOG_LEVELS = {1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}
_last_log_level = logging.DEBUG
_backend_lock = threading.Lock()
_backend_ready = False


@llama_cpp.llama_log_callback
def _route_llama_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    """Send llama.cpp's log lines to the ``simulacra.llama`` logger (silent by default)."""
    global _last_log_level
    log_level = _LOG_LEVELS.get(level, _last_log_level)
    _last_log_level = log_level
    if logger.isEnabledFor(log_level):
        logger.log(log_level, text.decode("utf-8", errors="replace").rstrip())


def init_backend() -> None:
    """Initialise llama.cpp once per process, its log routed to :data:`logger`."""
    global _backend_ready
    with _backend_lock:
        if not _backend_ready:
            llama_cpp.llama_log_set(_route_llama_log, ctypes.c_void_p(0))
            llama_cpp.llama_backend_init()
            _backend_ready = True


def cpu_has_amx() -> bool:
    """Whether this CPU advertises AMX (whose llama.cpp kernels crash on quantized models)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return "amx_tile" in line.split()
    except OSError:
        pass
    info = llama_cpp.llama_print_system_info().decode("utf-8", errors="replace")
    return "AMX_INT8 = 1" in info


def default_threads() -> int:
    """The number of cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)
