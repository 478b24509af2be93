"""`slt trajectory` on the command line, and the worked DLN example's figure on --small settings."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

import slt.trajectory

ROOT = Path(__file__).resolve().parent.parent

MODEL_FILE = '''
import jax, jax.numpy as jnp
import toy_models

def loss(params, batch):
    prediction = jnp.sum((params["a"] * params["b"])[None, :] * batch["x"], axis=-1)
    return 0.5 * jnp.mean(jnp.square(batch["y"] - prediction))

def make_model():
    x = jax.random.normal(jax.random.key(0), (100, 2))
    y = x @ jnp.array([1.0, 0.0])
    return toy_models.from_loss(loss, {"x": x, "y": y}, {"a": jnp.ones(2), "b": jnp.ones(2)})
'''


def _slt(*arguments, cwd):
    return subprocess.run([sys.executable, "-m", "slt", *arguments], capture_output=True, text=True, timeout=600,
                          cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_slt_trajectory_writes_the_table_and_figure_and_refuses_a_missing_path(tmp_path):
    (tmp_path / "model.py").write_text(MODEL_FILE)
    for step, scale in ((10, 0.5), (20, 1.0)):
        slt.trajectory.save_npz_checkpoint(tmp_path / "ckpt" / f"step_{step}.npz",
                                           {"a": scale * jnp.ones(2), "b": jnp.array([1.0, 0.0])})
    common = ["model.py:make_model", "ckpt", "--out", "llc", "--draws", "40", "--chains", "2", "--step-size", "1e-3"]
    result = _slt("trajectory", *common, "--restrict", "a=a", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "stage boundaries" in result.stdout
    with open(tmp_path / "llc" / "llc.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["subset"], row["step"]) for row in rows] == [("all", "10"), ("all", "20"), ("a", "10"), ("a", "20")]
    assert all(np.isfinite(float(row["estimate"])) for row in rows)
    assert (tmp_path / "llc" / "llc.png").stat().st_size > 1000
    refused = _slt("trajectory", *common[:3], "other", "--restrict", "w=layers/0", cwd=tmp_path)
    assert refused.returncode == 2 and "no parameter at path 'layers/0'" in refused.stderr


@pytest.mark.slow  # 2-3 minutes each under load: the figure runs whole trajectories
@pytest.mark.parametrize(("name", "printed"), [("fig_trajectory_dln", ["final checkpoint, γ = 1", "teacher transitions"]),
                                               ("fig_trajectory_tms", ["minimally singular, λ = 8.5", "k-gon at each"])])
def test_trajectory_figure_small_writes_images(name, printed, tmp_path):
    result = subprocess.run([sys.executable, "-W", "error", str(ROOT / "figures" / f"{name}.py"), "--small",
                             "--out", str(tmp_path)], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert all(text in result.stdout for text in printed), result.stdout[-3000:]
    for suffix in ("png", "pdf"):
        path = tmp_path / f"{name}.{suffix}"
        assert path.exists() and path.stat().st_size > 1000, path


def test_bad_trajectory_inputs_are_one_line_before_anything_is_written(tmp_path, capsys):
    from slt.cli import main

    (tmp_path / "model.py").write_text(MODEL_FILE)
    slt.trajectory.save_npz_checkpoint(tmp_path / "ckpt" / "step_10.npz", {"a": jnp.ones(2), "b": jnp.ones(2)})
    model, folder = str(tmp_path / "model.py") + ":make_model", str(tmp_path / "ckpt")
    cases = [([str(tmp_path / "ckpt" / "step_10.npz") + ":f", folder], "cannot import"),  # a file that is not .py
             ([model, folder, "--chains", "0"], "num_chains must be an integer >= 1, got 0"),
             ([model, folder, "--thinning", "0"], "thinning must be an integer >= 1, got 0"),
             ([model, folder, "--nbeta", "-3"], "nbeta must be > 0, got -3.0"),
             ([model, folder, "--step-size", "0"], "step_size must be > 0, got 0.0")]
    for arguments, message in cases:
        out = tmp_path / "out"
        assert main(["trajectory", *arguments, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
        assert not out.exists()  # nothing calibrated or recorded: the corrected command can use the same --out
