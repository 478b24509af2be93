"""The persistent compilation cache of the `slt` command: where it lives, how to turn it off,
and that a cached run gives the same numbers as a cold one."""

import json
import os
import subprocess
import sys

import jax

from slt.run import default_cache_dir, enable_compilation_cache


def test_location_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SLT_COMPILATION_CACHE", "off")
    assert default_cache_dir() is None
    assert enable_compilation_cache() is None
    monkeypatch.setenv("SLT_COMPILATION_CACHE", str(tmp_path / "here"))
    assert default_cache_dir() == tmp_path / "here"
    monkeypatch.delenv("SLT_COMPILATION_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "slt-workbench" / "jax"


def test_an_unwritable_folder_disables_the_cache_instead_of_failing(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    before = jax.config.jax_compilation_cache_dir
    assert enable_compilation_cache(blocker / "cache") is None
    assert jax.config.jax_compilation_cache_dir == before


def test_cli_fills_the_cache_and_a_cached_run_repeats_the_numbers(tmp_path):
    cache = tmp_path / "cache"
    command = [sys.executable, "-m", "slt", "estimate", "normal_crossing", "--set", "powers=1,2", "--n", "2000",
               "--chains", "2", "--draws", "50", "--seed", "3", "--json"]
    environment = {**os.environ, "SLT_COMPILATION_CACHE": str(cache)}
    cold = subprocess.run(command, capture_output=True, text=True, env=environment, check=True)
    assert any(name.startswith("jit__run_phase") for name in os.listdir(cache))
    warm = subprocess.run(command, capture_output=True, text=True, env=environment, check=True)
    first, second = json.loads(cold.stdout), json.loads(warm.stdout)
    assert first["estimate"] == second["estimate"] and first["std_error"] == second["std_error"]
