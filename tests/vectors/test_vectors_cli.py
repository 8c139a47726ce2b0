"""``simulacra vectors extract / axis / show`` on the embedded model (test-size specs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulacra.cli import main
from simulacra.vectors import load_role_set, load_spec, read_control_vector

DATA = Path(__file__).parent / "data"
SPEC = DATA / "tiny_pirate.toml"
ROLES = DATA / "tiny_roles.toml"


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("vectors") / "pirate.gguf"
    assert main(["vectors", "extract", str(SPEC), "--out", str(out), "--max-tokens", "12"]) == 0
    return out


def test_extract_writes_a_control_vector_that_loads_back(extracted, engine, capsys):
    vector = read_control_vector(extracted)
    assert vector.name == "pirate" and vector.method == "mean_diff"
    assert vector.layers == (12, 18) and vector.n_embd == 576
    assert vector.model_sha256 == engine.sha256 and vector.architecture == "llama"
    assert vector.prompts_sha256 == load_spec(SPEC).prompts_sha256()
    assert dict(vector.meta) == {"pairs": "2", "questions": "2", "max_tokens": "12", "seed": "0"}
    norms = vector.norms()
    assert np.all(norms > 1) and np.all(norms < 1000), norms
    assert main(["vectors", "show", str(extracted)]) == 0
    out = capsys.readouterr().out
    assert "pirate (mean_diff), 576 wide" in out and engine.sha256 in out
    assert vector.prompts_sha256 in out
    for layer, norm in zip(vector.layers, norms, strict=True):
        assert f"{layer:>5}  {norm:.3f}" in out


def test_extraction_is_reproducible(extracted, tmp_path):
    again = tmp_path / "again.gguf"
    assert main(["vectors", "extract", str(SPEC), "--out", str(again), "--max-tokens", "12"]) == 0
    assert read_control_vector(again) == read_control_vector(extracted)


def test_an_existing_out_is_refused_and_left_alone(extracted, capsys):
    before = extracted.read_bytes()
    assert main(["vectors", "extract", str(SPEC), "--out", str(extracted)]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err or "exists" in err
    assert "Traceback" not in err
    assert extracted.read_bytes() == before


def test_spec_mistakes_name_the_file_and_field(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(SPEC.read_text().replace('method = "mean_diff"', 'method = "median"'))
    out = tmp_path / "never.gguf"
    assert main(["vectors", "extract", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"error: {bad}: method:" in err and "'mean_diff'" in err
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]
    assert main(["vectors", "extract", str(SPEC), "--out", str(out), "--max-tokens", "0"]) == 2
    assert "--max-tokens: must be >= 1, got 0" in capsys.readouterr().err


def test_a_block_the_model_lacks_is_a_located_error(tmp_path, capsys):
    deep = tmp_path / "deep.toml"
    deep.write_text(SPEC.read_text().replace("layers = [12, 18]", "layers = [12, 40]"))
    out = tmp_path / "deep.gguf"
    assert main(["vectors", "extract", str(deep), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"error: {deep}: layers[1]: block 40 does not exist" in err
    assert not out.exists()


def test_layer_options_replace_the_spec_layers(extracted, tmp_path):
    out = tmp_path / "one.gguf"
    argv = ["vectors", "extract", str(SPEC), "--out", str(out), "--max-tokens", "12"]
    assert main([*argv, "--layer", "18"]) == 0
    vector = read_control_vector(out)
    assert vector.layers == (18,)
    np.testing.assert_array_equal(
        vector.direction(18), read_control_vector(extracted).direction(18)
    )


def test_bad_layer_options_are_located_errors(tmp_path, capsys):
    out = tmp_path / "never.gguf"
    argv = ["vectors", "extract", str(SPEC), "--out", str(out)]
    assert main([*argv, "--layer", "12", "--layer", "40", "--layer", "-1"]) == 2
    err = capsys.readouterr().err
    assert f"error: {SPEC}: --layer[1]: block 40 does not exist" in err
    assert f"{SPEC}: --layer[2]: block -1 does not exist" in err
    assert "Traceback" not in err
    assert main([*argv, "--layer", "12", "--layer", "12"]) == 2
    assert f"error: {SPEC}: --layer: block 12 is listed twice" in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_axis_writes_the_contrast_axis_and_reports_persona_space(tmp_path, engine, capsys):
    out = tmp_path / "axis.gguf"
    argv = ["vectors", "axis", str(ROLES), "--out", str(out), "--max-tokens", "12"]
    assert main([*argv, "--questions", "1"]) == 0
    printed = capsys.readouterr().out
    assert "block 15: variance explained by PC1-PC3" in printed  # 3 roles: PC1-PC2 only
    axis = read_control_vector(out)
    assert axis.method == "assistant_axis" and axis.layers == (15,)
    assert axis.model_sha256 == engine.sha256
    assert axis.prompts_sha256 == load_role_set(ROLES).prompts_sha256()
    assert axis.meta["roles"] == "3" and axis.meta["questions"] == "1"
    assert axis.meta["pc1_separates_default"] in {"true", "false"}
    assert np.isfinite(axis.norms()).all() and axis.norms()[0] > 0
