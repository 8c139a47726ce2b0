"""The generic executor: one function over many tasks, in process or on local processes.

(The Dask path is exercised end to end by the sweep tests.)
"""

from __future__ import annotations

import os

import pytest

from simulacra.sweep.executors import error_text, execute


def square(task: int) -> int:
    if task < 0:
        raise ValueError(f"negative task {task}")
    return task * task


def die(task: int) -> int:
    if task == 1:
        os._exit(3)  # the worker process dies without a word
    return task


def outcomes(**kwargs) -> dict[int, tuple[int | None, str | None]]:
    return {index: (result, error) for index, result, error in execute(**kwargs)}


def test_in_process_yields_every_task_in_order_and_errors_as_text():
    got = list(execute(square, [3, -2, 4]))
    assert [index for index, _, _ in got] == [0, 1, 2]
    assert got[0] == (0, 9, None) and got[2] == (2, 16, None)
    index, result, error = got[1]
    assert (index, result) == (1, None)
    line = square.__code__.co_firstlineno + 2
    assert error == f"ValueError: negative task -2 (at test_executors.py:{line})"


def test_local_processes_give_the_same_outcomes():
    tasks = [3, -2, 4, 5]
    local = outcomes(fn=square, tasks=tasks, workers=2, preload=("simulacra.sweep.executors",))
    assert local == outcomes(fn=square, tasks=tasks)


def test_a_dead_worker_fails_its_tasks_and_nothing_is_lost():
    got = outcomes(fn=die, tasks=[0, 1, 2], workers=2)
    assert sorted(got) == [0, 1, 2]
    result, error = got[1]
    assert result is None and error.startswith("BrokenProcessPool")
    for index in (0, 2):  # done before the crash, or failed with it
        result, error = got[index]
        assert (result, error) == (index, None) or error.startswith("BrokenProcessPool")


def test_no_tasks_yield_nothing():
    assert list(execute(square, [], workers=3)) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"executor": "ray"}, "unknown executor 'ray'"),
        ({"workers": 0}, "workers must be an integer >= 1"),
        ({"address": "tcp://x:1"}, "needs the dask executor"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        list(execute(square, [1], **kwargs))


def test_error_text_names_the_innermost_frame():
    try:
        square(-1)
    except ValueError as exc:
        text = error_text(exc)
    assert text.startswith("ValueError: negative task -1 (at test_executors.py:")
    assert error_text(RuntimeError("bare")) == "RuntimeError: bare"
