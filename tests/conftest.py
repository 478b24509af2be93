"""Strict JAX for every test: rank promotion raises; x64 only where a test asks for it."""

import importlib.util
from pathlib import Path

import jax
import pytest

REPOSITORY = Path(__file__).resolve().parent.parent

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


@pytest.fixture(scope="session")
def load_script():
    """`load_script(path, name)`: a repository script (benchmarks/, examples/) that is not a package
    module, executed as a fresh module named `name` (default: its file stem), for its functions."""

    def load(relative_path: str, name: str | None = None):
        path = REPOSITORY / relative_path
        spec = importlib.util.spec_from_file_location(name or path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
