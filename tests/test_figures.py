"""The canonical figures: every figure's quick run asserts its claims; docs/figures.md matches the JSON of the
full runs; ``meanfield animate`` writes an animation or refuses clearly."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from meanfield.figures import FIGURES, _fmt, make

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


@pytest.mark.parametrize("name", list(FIGURES))
def test_quick_figure_claims(name, figures_dir):
    # the session's quick figures (conftest.py): a figure the examples made already is reused, not recomputed
    (record,) = make([name], quick=True, out=figures_dir, reuse=True, progress=False)
    for ext in ("png", "pdf", "json"):
        assert (figures_dir / f"{name}.{ext}").stat().st_size > 1000
    saved = json.loads((figures_dir / f"{name}.json").read_text())
    assert saved["quick"] is True and saved["claims"], "a figure without claims asserts nothing"
    failed = [f"{c['name']} = {c['measured']:.4g}, expected {c['expected']}" for c in saved["claims"] if not c["holds"]]
    assert not failed, f"{name}: " + "; ".join(failed)
    assert record["claims"] == saved["claims"]
    md = (figures_dir / "figures.md").read_text()
    assert f"{name}.png" in md and saved["title"] in md


def test_docs_page_lists_every_figure_with_its_numbers():
    """docs/figures.md is generated from the full runs' JSON: every figure is there, with the numbers of its JSON."""
    md = (DOCS / "figures.md").read_text()
    sections = re.split(r"^## ", md, flags=re.M)[1:]
    assert len(sections) == len(FIGURES)
    for name, section in zip(FIGURES, sections):
        record = json.loads((DOCS / "figures" / f"{name}.json").read_text())
        assert record["quick"] is False, f"{name}: docs/figures must come from full runs"
        assert section.startswith(f"{list(FIGURES).index(name) + 1}. {record['title']}")
        assert f"figures/{name}.png" in section and (DOCS / "figures" / f"{name}.png").is_file()
        assert record["command"] in section
        for c in record["claims"]:
            assert f"| {c['name']} | {_fmt(c['measured'])} | {c['expected']} |" in section, (name, c["name"])
        for label, value in record["highlights"].items():
            assert f"| {label} | {_fmt(value)} |" in section, (name, label)


def _small_run(tmp_path, d=2, m=8):
    import meanfield as mf

    data = mf.teacher_student(d=d, n_train=12, k=2, seed=0)
    model = mf.Model(d=d, m=m, symmetric=True)
    flow = mf.particle_flow(data, model, mf.Dynamics(dt=0.1))
    path = tmp_path / f"run{d}.h5"
    with mf.Recorder(path, data=data) as rec:
        mf.simulate(flow, mf.init_particles(model, 0), n_steps=40, snapshot_every=10, recorder=rec.sink())
    return path


def test_animate_two_runs_side_by_side(tmp_path):
    from PIL import Image

    from meanfield.figures.animate import animate

    a, b = _small_run(tmp_path, d=3), _small_run(tmp_path / "..", d=3)
    out = animate([a, b], tmp_path / "both.gif", frames=3)
    with Image.open(out) as im:
        assert im.n_frames == 3 and im.size[0] > im.size[1]  # two panels side by side


def test_projection_is_orthonormal_and_spans_the_teacher_plane():
    from meanfield.figures.animate import projection

    rng = np.random.default_rng(0)
    teacher = np.hstack([np.ones((3, 1)), rng.standard_normal((3, 5))])
    P, _ = projection(5, teacher=teacher)
    np.testing.assert_allclose(P @ P.T, np.eye(2), atol=1e-14)
    for w in teacher[:2, 1:]:  # both teacher directions lie in the plane
        np.testing.assert_allclose(np.linalg.norm(P @ w), np.linalg.norm(w), rtol=1e-12)


def test_cli_animate_refuses_mp4_without_ffmpeg_and_bad_files(tmp_path):
    path = _small_run(tmp_path)
    env_path = str(tmp_path / "empty-bin")  # a PATH with no ffmpeg on it
    Path(env_path).mkdir()
    code = ("import os, sys; os.environ['PATH'] = sys.argv[1]; from meanfield.cli import main; "
            "sys.exit(main(sys.argv[2:]))")
    r = subprocess.run([sys.executable, "-c", code, env_path, "animate", str(path), "-o", str(tmp_path / "x.mp4")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and ".gif" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.mp4").exists()
    r = subprocess.run([sys.executable, "-m", "meanfield", "animate", str(tmp_path / "missing.h5")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "missing.h5" in r.stderr and "Traceback" not in r.stderr


def test_cli_figures_refuses_unknown_names_and_writes_nothing(tmp_path):
    r = subprocess.run([sys.executable, "-m", "meanfield", "figures", "no_such_figure", "-o", str(tmp_path / "f")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "particle_paths" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "f").exists()


@pytest.mark.parametrize("name", ["ntk_error", "chaos_pde"])
def test_replot_redraws_from_the_saved_numbers_alone(name, figures_dir, tmp_path):
    """``meanfield figures --replot`` draws a figure from its JSON (numbers as JSON gives them back: lists, null
    for nan), computes nothing and leaves the JSON as it was; without a JSON it refuses with exit code 2."""
    make([name], quick=True, out=figures_dir, reuse=True, progress=False)
    saved = (figures_dir / f"{name}.json").read_bytes()
    (tmp_path / f"{name}.json").write_bytes(saved)
    r = subprocess.run([sys.executable, "-m", "meanfield", "figures", name, "--replot", "-o", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / f"{name}.png").stat().st_size > 10_000 and (tmp_path / f"{name}.pdf").stat().st_size > 1000
    assert (tmp_path / f"{name}.json").read_bytes() == saved and f"{name}.png" in (tmp_path / "figures.md").read_text()
    empty = tmp_path / "empty"
    empty.mkdir()
    r = subprocess.run([sys.executable, "-m", "meanfield", "figures", name, "--replot", "-o", str(empty)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and f"{name}.json" in r.stderr
    assert list(empty.iterdir()) == []


def test_claims_compare_with_their_tolerance():
    from meanfield.figures._figure import check_claims

    params = {"claims": {"slope": {"value": -0.5, "tolerance": 0.15}, "ratio": {"min": 10.0}}}
    held = check_claims(params, {"slope": -0.62, "ratio": 12.0})
    assert [c.holds for c in held] == [True, True]
    failed = check_claims(params, {"slope": -0.7, "ratio": float("nan")})
    assert [c.holds for c in failed] == [False, False]
    assert failed[0].expected == "-0.5 ± 0.15"


def test_fit_slope_recovers_a_power_law_and_its_error():
    from meanfield.figures._figure import fit_slope

    m = 2.0 ** np.arange(5, 12)
    slope, err = fit_slope(m, 3 * m**-0.5)
    assert abs(slope + 0.5) < 1e-12 and err < 1e-12
    rng = np.random.default_rng(1)
    noisy = [fit_slope(m, 3 * m**-0.5 * np.exp(0.1 * rng.standard_normal(m.size))) for _ in range(400)]
    slopes, errs = np.array(noisy).T
    # the standard error is the spread of the fitted slope over repetitions
    assert 0.8 < np.std(slopes) / np.mean(errs) < 1.25
