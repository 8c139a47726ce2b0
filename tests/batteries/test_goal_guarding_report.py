"""The goal-guarding report without a model: summary.csv and figures from synthetic tables."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulacra.analysis.goal_guarding import METRICS
from simulacra.batteries import BatteryResult
from simulacra.batteries.goal_guarding import write_report
from simulacra.batteries.goal_guarding.report import FIGURES, stat_settings

PNG = b"\x89PNG\r\n\x1a\n"
FACTORS = (
    "seed",
    "task",
    "template",
    "subject",
    "peer",
    "channel",
    "monitoring",
    "motive",
    "control",
    "matched",
)


def synthetic_result(tmp_path: Path, models=("m1", "m2")) -> BatteryResult:
    rng = np.random.default_rng(0)
    conditions = [
        ("self", "none", "none", "none", "none"),
        ("peer", "none", "none", "none", "none"),
    ]
    conditions += [("self", "none", "none", c, "none") for c in ("positive", "negative")]
    for channel, peer in itertools.product(("memory", "dialogue"), ("good", "bad")):
        conditions += [
            ("self", peer, channel, "none", "none"),
            ("peer", peer, channel, "none", "none"),
        ]
        conditions.append(("self", "none", channel, "length", peer))
    decisions, draws, beliefs = [], [], []
    for model, (subject, peer, channel, control, matched) in itertools.product(models, conditions):
        for task, k, seed, mon in itertools.product(
            ("a", "b"), range(2), range(2), ("monitored", "unmonitored")
        ):
            p = float(rng.uniform(0.2, 0.8))
            row = dict(
                zip(
                    FACTORS,
                    (
                        seed,
                        task,
                        f"{task}{k}",
                        subject,
                        peer,
                        channel,
                        mon,
                        "none",
                        control,
                        matched,
                    ),
                    strict=False,
                )
            )
            row["model"] = model
            decisions.append({**row, "p_b": p, "p_b_order_0": p - 0.1, "p_b_order_1": p + 0.1})
            draws += [{**row, "draw": d, "protective": bool(rng.random() < p)} for d in range(5)]
        if subject == "self" and control in ("none", "length") and channel != "none":
            for seed, step, (name, tag) in itertools.product(
                range(2), (0, 1), (("g", "guarding"), ("c", "compliant"))
            ):
                beliefs.append(
                    {
                        "model": model,
                        "seed": seed,
                        "channel": channel,
                        "peer": peer,
                        "control": control,
                        "matched": matched,
                        "step": step,
                        "speaker": "",
                        "simulacrum": name,
                        "tag": tag,
                        "probability": 0.5 if step == 0 else (0.6 if tag == "guarding" else 0.4),
                    }
                )
    manifest = {
        "battery_kind": "goal_guarding",
        "battery": {"analysis": {"bootstrap": 200, "permutations": 100, "seed": 3}},
    }
    tables = {
        "decisions": pd.DataFrame(decisions),
        "draws": pd.DataFrame(draws),
        "beliefs": pd.DataFrame(beliefs),
    }
    return BatteryResult(tmp_path, manifest, tables)


def test_write_report_files(tmp_path):
    result = synthetic_result(tmp_path)
    figdir = tmp_path / "fig"
    written = write_report(result, figdir)
    drawn = set(FIGURES) - {"steered_control.png"}  # the synthetic design does not steer
    assert {p.name for p in written} == {"summary.csv", "beliefs_summary.csv", *drawn}
    for name in drawn:
        assert (figdir / name).read_bytes()[:8] == PNG
    summary = pd.read_csv(figdir / "summary.csv")
    assert set(summary["metric"]) == set(METRICS) - {"steered_control"}
    assert set(summary["model"]) == {"m1", "m2"}
    beliefs = pd.read_csv(figdir / "beliefs_summary.csv")
    assert beliefs["shift"].to_numpy() == pytest.approx(np.full(len(beliefs), 0.1))
    assert sorted(p.name for p in figdir.iterdir()) == sorted(p.name for p in written)


def test_report_is_reproducible(tmp_path):
    result = synthetic_result(tmp_path, models=("m1",))
    write_report(result, tmp_path / "one")
    write_report(result, tmp_path / "two")
    assert (tmp_path / "one" / "summary.csv").read_text() == (
        tmp_path / "two" / "summary.csv"
    ).read_text()


def test_stat_settings_come_from_the_manifest():
    settings = stat_settings({"battery": {"analysis": {"bootstrap": 50, "min_margin": 0.1}}})
    assert settings.n_boot == 50 and settings.min_margin == 0.1 and settings.n_perm == 2000
    assert stat_settings({}).n_boot == 2000


def test_report_without_beliefs_or_peers(tmp_path):
    result = synthetic_result(tmp_path, models=("m1",))
    decisions = result.tables["decisions"]
    tables = {"decisions": decisions[decisions["channel"] == "none"]}
    written = write_report(BatteryResult(tmp_path, result.manifest, tables), tmp_path / "fig")
    assert "beliefs_summary.csv" not in {p.name for p in written}
