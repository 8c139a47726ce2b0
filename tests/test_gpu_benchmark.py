"""``benchmarks/gpu.py`` on the CPU (``--gpu-layers 0``) at smoke sizes: the same JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_benchmark_runs_on_the_cpu_and_prints_the_benchmarks_json():
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "gpu.py"),
            "--gpu-layers",
            "0",
            "--tiny",
            "--only",
            "instruments",
            "--threads",
            "2",
            "--prompt-eval-tokens",
            "64",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["benchmark"] for line in lines] == ["instruments"]
    for line in lines:
        assert line["n_gpu_layers"] == 0
        assert line["prompt_eval_tokens"] == 64 and line["prompt_eval_tokens_per_s"] > 0
        assert line["engine_over_prompt_eval"] > 0
        # the same pass in the engine's 63-token micro-batches, and the ratios built on it
        assert line["prompt_eval_engine_ubatch"] == 63
        assert line["prompt_eval_engine_ubatch_tokens_per_s"] > 0
        assert line["engine_over_prompt_eval_engine_ubatch"] > 0
        assert line["engine_ubatch_over_prompt_eval"] > 0
        assert line["decoded_over_unique"] >= 1.0
        assert line["prompts"] == 2 and line["engine_tokens"] > 0


def test_gpu_benchmark_names_an_unknown_benchmark():
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--only", "engine,warp"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "unknown benchmark(s) warp" in done.stderr
