"""The import graph runs downward, in the order the data flows (docs/ARCHITECTURE.md):

    pipeline (the CLI)  ->  evaluate  ->  render | train  ->  core

A module may import its own package and any floor below; render and train, which share a floor,
do not import each other. Every import counts, including those inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

FLOORS = {"core": 0, "render": 1, "train": 1, "evaluate": 2, "pipeline": 3}


def imports_of(path: Path) -> set[str]:
    """Top-level names of the project's packages that `path` imports."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        out |= {n.split(".")[0] for n in names} & FLOORS.keys()
    return out


def violations() -> list[str]:
    bad = []
    for package, floor in FLOORS.items():
        for path in sorted((REPO / package).rglob("*.py")):
            for target in imports_of(path) - {package}:
                if FLOORS[target] >= floor:
                    bad.append(f"{path.relative_to(REPO)} imports {target}")
    return bad


def test_every_import_runs_downward():
    assert violations() == []


@pytest.mark.parametrize(("source", "line"), [
    ("core/x.py", "from train.model import DCIGN"),
    ("render/x.py", "def f():\n    from train import fit"),
    ("train/x.py", "import render.stage"),
    ("evaluate/x.py", "from pipeline.cli import main"),
])
def test_the_check_catches_an_upward_or_sideways_import(tmp_path, source, line):
    path = tmp_path / source
    path.parent.mkdir()
    path.write_text(line + "\n")
    package = source.split("/")[0]
    assert imports_of(path) - {package}
    assert all(FLOORS[t] >= FLOORS[package] for t in imports_of(path) - {package})


def test_dvc_deps_follow_the_floors():
    """Each stage depends on its own floor and the floors below, not on a stage above."""
    import yaml

    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    deps = {name: {d.split("/")[0] for d in (s.get("do") or s)["deps"]}
            for name, s in stages.items()}
    assert deps["render"] & FLOORS.keys() == {"core", "pipeline", "render"}
    assert deps["train"] & FLOORS.keys() == {"core", "pipeline", "train"}
    assert deps["evaluate"] & FLOORS.keys() == {"core", "pipeline", "train", "evaluate"}
