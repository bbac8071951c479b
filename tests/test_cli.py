"""The command line: a real run end to end, and one-line errors with exit code 2 for bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest

import meanfield as mf
from meanfield.cli import main

TINY = """
[data]
kind = "teacher_student"
d = 3
n_train = 24
n_test = 40
k = 2
seed = 3
[model]
m = 16
activation = "tanh"
symmetric = true
[dynamics]
dt = 0.2
integrator = "heun"
[run]
n_steps = 30
snapshot_every = 10
scalings = ["mean_field", "ntk"]
[output]
figure = true
"""


@pytest.fixture
def cfg(tmp_path):
    p = tmp_path / "tiny.toml"
    p.write_text(TINY)
    return p


def test_run_writes_files_that_match_an_in_process_simulation(cfg, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "mean_field" in printed and "ntk" in printed
    for name in ("tiny_mean_field.h5", "tiny_ntk.h5", "tiny.png", "tiny_summary.json"):
        assert (out / name).stat().st_size > 0
    summary = json.loads((out / "tiny_summary.json").read_text())
    # Independent check: the same configuration through the Python API.
    from meanfield.data import teacher_student
    from meanfield.run import simulate

    data = teacher_student(d=3, n_train=24, n_test=40, k=2, seed=3)
    theta0 = mf.init_particles(mf.Model(d=3, m=16, activation="tanh", symmetric=True), 0)
    for scaling in ("mean_field", "ntk"):
        model = mf.Model(d=3, m=16, activation="tanh", scaling=scaling, symmetric=True)
        res = simulate(mf.particle_flow(data, model, mf.Dynamics(dt=0.2, integrator="heun")), theta0,
                       n_steps=30, snapshot_every=10)
        assert summary[scaling]["train_loss"] == res.observables["train_loss"][-1]
        assert summary[scaling]["test_loss"] == res.observables["test_loss"][-1]
        assert summary[scaling]["t"] == pytest.approx(6.0)
        with mf.load(out / f"tiny_{scaling}.h5") as tr:
            assert tr.status == "completed"
            np.testing.assert_array_equal(tr.last_state().theta, res.state.theta)
            np.testing.assert_array_equal(tr.particles[:], res.theta)


def test_resume_skips_completed_runs(cfg, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 0
    before = (out / "tiny_ntk.h5").read_bytes()
    assert main(["run", str(cfg), "--out", str(out), "--quiet", "--resume"]) == 0
    assert (out / "tiny_ntk.h5").read_bytes() == before


@pytest.mark.parametrize("args, needle", [
    (["--set", "model.m=-3"], "model.m"),
    (["--set", "model.activation=swish"], "activation"),
    (["--set", "dynamics.dt=0"], "dynamics.dt"),
    (["--set", "run.scalings=['rich']"], "run.scalings"),
    (["--set", "data.kind=hdf"], "data.kind"),
    (["--set", "nonsense"], "--set"),
])
def test_bad_config_is_one_line_exit_2_and_writes_nothing(cfg, tmp_path, capsys, args, needle):
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


def test_missing_files_exit_2(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.toml")]) == 2
    assert "nope.toml" in capsys.readouterr().err
    bad = tmp_path / "notes.h5"
    bad.write_text("not hdf5")
    assert main(["info", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "notes.h5" in err and "\n" not in err


def test_console_entry_point_exit_code(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "meanfield", "run", str(tmp_path / "missing.toml")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "missing.toml" in proc.stderr and "Traceback" not in proc.stderr
