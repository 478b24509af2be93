"""The import graph has no upward edge: each layer imports only the layers below it.

Read from the source with `ast` (module-level and function-level imports alike), so the check
does not depend on import order or on what happens to be loaded already.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# package -> the first-party packages it must not import (prefix match on the dotted name)
FORBIDDEN = {
    "estimators": ("slt", "toy_models"),
    "toy_models": ("slt",),
    "slt.samplers": ("slt.run", "slt.estimate", "slt.batch", "slt.cli", "slt.dynamics", "slt.experiments"),
    # the driver depends on the kernel contract and the target density only: no concrete kernel, no blackjax
    "slt.run": ("slt.estimate", "slt.batch", "slt.cli", "slt.dynamics", "slt.experiments", "slt.samplers._sgld",
                "slt.samplers._sg", "slt.samplers._exact", "slt.samplers._registry", "blackjax", "numpyro"),
    "slt.estimate": ("slt.batch", "slt.cli", "slt.dynamics", "slt.experiments"),
    "slt.batch": ("slt.cli", "slt.dynamics", "slt.experiments"),
    "slt.nested": ("slt.estimate", "slt.batch", "slt.cli", "slt.dynamics", "slt.experiments", "slt.trajectory"),
    "slt.trajectory": ("slt.batch", "slt.cli", "slt.dynamics", "slt.experiments"),
}


def _modules(package: str):
    folder = ROOT.joinpath(*package.split("."))
    return sorted(folder.rglob("*.py"))


def _imports(path: Path) -> list[str]:
    """The dotted names a file imports; for `from slt.samplers import X` also slt.samplers.X."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def _hits(name: str, forbidden: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in forbidden)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_upward_import(package):
    if package == "slt.run":  # `from slt.samplers import X` goes through the package (all kernels)
        forbidden = FORBIDDEN[package] + ("slt.samplers",)
        allowed = ("slt.samplers._kernel", "slt.samplers._posterior")
    else:
        forbidden, allowed = FORBIDDEN[package], ()
    offenders = [f"{path.relative_to(ROOT)} imports {name}" for path in _modules(package) for name in _imports(path)
                 if _hits(name, forbidden) and not _hits(name, allowed)]
    assert not offenders, offenders


def test_the_check_sees_a_planted_upward_import(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text("from slt.estimate import estimate\nimport blackjax\n")
    names = _imports(planted)
    assert _hits("slt.estimate", FORBIDDEN["slt.run"]) and any(_hits(n, FORBIDDEN["slt.run"]) for n in names)
