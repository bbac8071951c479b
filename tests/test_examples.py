"""Every example runs (in quick mode) and writes its figure."""

import os
import runpy
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("plot_*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_quick(path, tmp_path, monkeypatch):
    monkeypatch.setenv("MEANFIELD_QUICK", "1")
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(path), run_name="__main__")
    pngs = list(tmp_path.rglob("*.png"))
    assert pngs, f"{path.name} wrote no figure"
    assert all(p.stat().st_size > 10_000 for p in pngs)
