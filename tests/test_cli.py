"""The command line: every dynamics kind end to end against the same run from Python, resume, signals at any
moment, damaged files, and exit codes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import meanfield as mf
from meanfield import interrupt
from meanfield.cli import main
from meanfield.data import load_digits, random_teacher, teacher_student
from meanfield.linearized import linearized_flow
from meanfield.observers import default_observers, observer
from meanfield.population import online_flow, population_flow
from meanfield.run import run_config, simulate

CONFIGS = Path(__file__).resolve().parent.parent / "examples" / "configs"

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


# --- every dynamics kind: the command line against the same run built by hand from the Python API --------------

def _python_runs(kind, n_steps):
    """(scaling, flow name) -> Result, built from the public API the way the example configuration says."""
    out = {}
    if kind == "particle":
        ds = load_digits(target="parity", n_test=297, seed=0)
        dyn = mf.Dynamics(integrator="sgd", batch_size=100, dt=0.05, temperature=1e-5, seed=3)
        for scaling in ("mean_field", "lazy"):
            model = mf.Model(d=64, m=16, activation="relu", scaling=scaling,
                             lazy_scale=4.0 if scaling == "lazy" else None)
            theta0 = mf.init_particles(model, 0)
            out[scaling, "neurons"] = (mf.particle_flow(ds, model, dyn), theta0, 20)
    elif kind == "linearized":
        ds = teacher_student(d=4, n_train=64, n_test=256, k=2, seed=1)
        dyn = mf.Dynamics(dt=0.05, integrator="heun")
        for scaling in ("ntk", "explicit"):
            extra = dict(alpha=0.75, beta=0.5, c=1.0) if scaling == "explicit" else {}
            model = mf.Model(d=4, m=16, activation="tanh", symmetric=True, scaling=scaling, **extra)
            theta0 = mf.init_particles(model, 0)
            out[scaling, "neurons"] = (mf.particle_flow(ds, model, dyn), theta0, 10)
            out[scaling, "linearized"] = (linearized_flow(ds, model, dyn, theta0), theta0, 10)
    else:
        teacher = random_teacher(3, 2, seed=2)
        model = mf.Model(d=3, m=16, activation="erf")
        theta0 = mf.init_particles(model, 0)
        if kind == "population":
            flow = population_flow(teacher, model, mf.Dynamics(dt=0.1, integrator="rk4"))
            out["mean_field", "neurons"] = (flow, theta0, 10)
        else:
            flow = online_flow(teacher, model, mf.Dynamics(integrator="sgd", batch_size=32, dt=0.05, seed=7))
            out["mean_field", "neurons"] = (flow, theta0, 20)
    results = {}
    for key, (flow, theta0, every) in out.items():
        record = ("risks", "motion", "w2", "kernel") if kind == "linearized" else ("risks", "motion", "w2")
        obs = default_observers(flow, theta0, record=record, kernel_points=64)
        results[key] = simulate(flow, theta0, n_steps=n_steps, snapshot_every=every, observers=obs)
    return results


@pytest.mark.parametrize("kind", ["particle", "linearized", "population", "online"])
def test_every_dynamics_kind_matches_the_python_api(kind, tmp_path, capsys):
    out = tmp_path / "out"
    n_steps = 30
    dt = {"particle": None, "linearized": 0.05, "population": 0.1, "online": 0.05}[kind]
    length = f"run.n_steps={n_steps}" if dt is None else f"run.t_end={n_steps * dt}"
    assert main(["run", str(CONFIGS / f"{kind}.toml"), "--out", str(out), "--set", "model.m=16",
                 "--set", length] + (["--set", "observers.kernel_points=64"] if kind == "linearized" else [])) == 0
    printed = capsys.readouterr().out
    assert "completed" in printed and (out / f"{kind}.png").stat().st_size > 10_000
    summary = json.loads((out / f"{kind}_summary.json").read_text())
    for (scaling, name), res in _python_runs(kind, n_steps).items():
        path = out / f"{kind}_{scaling}.h5"
        with mf.load(path) as tr:
            assert tr.status == "completed" and tr.config["dynamics"]["kind"] == kind
            fl = tr.flow(name)
            np.testing.assert_array_equal(fl.last_state().theta, res.state.theta)
            np.testing.assert_array_equal(fl.steps, res.steps)
            assert set(fl.observables) == set(res.observables)
            for key, values in res.observables.items():
                np.testing.assert_array_equal(fl.observables[key].value, values)
                assert "description" in tr._f[f"observables/{'' if name == 'neurons' else name + '/'}{key}"].attrs
        label = scaling if name == "neurons" else f"{scaling}/{name}"
        risk = "population_risk" if kind in ("population", "online") else "train_loss"
        assert summary[label][risk] == res.observables[risk][-1] and summary[label]["status"] == "completed"
    if kind == "linearized":  # the linearised network's kernel does not move; the network's does
        with mf.load(out / "linearized_ntk.h5") as tr:
            assert np.all(tr.flow("linearized").observables["kernel_change"].value == 0)
            assert tr.observables["kernel_change"].value[-1] > 0


def test_run_config_is_the_pipeline_and_resume_skips_completed_runs(cfg, tmp_path, capsys):
    out = tmp_path / "out"
    result = run_config(cfg, out)
    assert result.ok and [r.status for r in result.runs] == ["completed", "completed"]
    assert {p.name for p in out.iterdir()} == {"tiny_mean_field.h5", "tiny_ntk.h5", "tiny.png", "tiny_summary.json"}
    before = (out / "tiny_ntk.h5").read_bytes()
    assert main(["run", str(cfg), "--out", str(out), "--quiet", "--resume"]) == 0
    assert capsys.readouterr().out == ""
    assert (out / "tiny_ntk.h5").read_bytes() == before
    # extending the run continues each file from its last snapshot, to the same state as one long run
    assert main(["run", str(cfg), "--out", str(out), "--quiet", "--resume", "--set", "run.n_steps=50"]) == 0
    assert main(["run", str(cfg), "--out", str(tmp_path / "long"), "--quiet", "--set", "run.n_steps=50"]) == 0
    for s in ("mean_field", "ntk"):
        with mf.load(out / f"tiny_{s}.h5") as a, mf.load(tmp_path / "long" / f"tiny_{s}.h5") as b:
            np.testing.assert_array_equal(a.particles[:], b.particles[:])
            np.testing.assert_array_equal(a.observables["w2_to_init"].value, b.observables["w2_to_init"].value)
    # a changed model is not resumed into the old files
    assert main(["run", str(cfg), "--out", str(out), "--quiet", "--resume", "--set", "model.m=18"]) == 2
    assert "model.m" in capsys.readouterr().err


def _interrupt_in_first_snapshot(monkeypatch, how):
    """Make the first snapshot of the first flow deliver a signal (or raise, as plain Python's Ctrl-C does)."""
    from meanfield import observers as O

    real = O.default_observers

    def patched(flow, theta0, **kw):
        obs = real(flow, theta0, **kw)
        hit = []

        def fire(state):
            if not hit:
                hit.append(1)
                if how == "signal":
                    os.kill(os.getpid(), signal.SIGTERM)
                    time.sleep(0.05)
                else:
                    raise KeyboardInterrupt
            return 0.0

        return [observer("probe", fire)] + obs

    monkeypatch.setattr(O, "default_observers", patched)


@pytest.mark.parametrize("how", ["signal", "keyboard_interrupt"])
def test_interrupt_during_the_first_snapshot_then_resume(cfg, tmp_path, monkeypatch, capsys, how):
    out = tmp_path / "out"
    _interrupt_in_first_snapshot(monkeypatch, how)
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "Traceback" not in err and err.count("\n") == 1
    with mf.load(out / "tiny_mean_field.h5") as tr:
        assert tr.status == "interrupted"
        assert len(tr.steps) == (1 if how == "signal" else 0)  # a deferred signal lets the snapshot finish
    assert not (out / "tiny_ntk.h5").exists()
    monkeypatch.undo()
    assert main(["run", str(cfg), "--out", str(out), "--quiet", "--resume"]) == 0
    ref = tmp_path / "ref"
    assert main(["run", str(cfg), "--out", str(ref), "--quiet"]) == 0
    for s in ("mean_field", "ntk"):
        with mf.load(out / f"tiny_{s}.h5") as a, mf.load(ref / f"tiny_{s}.h5") as b:
            assert a.status == "completed"
            np.testing.assert_array_equal(a.last_state().theta, b.last_state().theta)
            np.testing.assert_array_equal(a.observables["train_loss"].value, b.observables["train_loss"].value)


# --- signals at random moments, through the real program -----------------------------------------------------

SIGNAL_RUN = TINY.replace("n_steps = 30", "n_steps = 200").replace("snapshot_every = 10", "snapshot_every = 20") \
    .replace("m = 16", "m = 32").replace("figure = true", "figure = true\ncompression = \"lzf\"")


def _catches_sigterm(pid) -> bool:
    """Whether the process has installed a SIGTERM handler (bit 15 of SigCgt in /proc/PID/status)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            line = next(row for row in fh if row.startswith("SigCgt:"))
    except (OSError, StopIteration):
        return False
    return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)


def _running(pid) -> bool:
    """Whether the process runs (not exited, and not a zombie waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _program(args, **kw):
    env = dict(os.environ, NUMBA_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "meanfield", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kw)


def test_signals_at_random_moments_are_never_lost(tmp_path, rng):
    """50 runs of the program, each sent SIGTERM or SIGINT at a random moment of the first 80 % of its life
    (imports, data, first snapshot, steps, recording, figure): each one exits 130 (or is ended by SIGTERM before Python runs a
    line of meanfield), never prints a traceback or "Exception ignored", and leaves only files that open; one
    run in three is then continued with --resume to the state of an uninterrupted run (every interrupted file
    opens with a status that --resume accepts, which test_interrupt_during_the_first_snapshot_then_resume
    exercises in full)."""
    cfg = tmp_path / "sig.toml"
    cfg.write_text(SIGNAL_RUN)
    ref = tmp_path / "ref"
    lives = []
    for k in range(2):  # the shorter life of two runs: the first may compile or warm caches the others need not
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "meanfield", "run", str(cfg), "--out",
                               str(ref if k == 0 else tmp_path / "ref2"), "--quiet"],
                              env=dict(os.environ, NUMBA_NUM_THREADS="1"), capture_output=True, text=True)
        lives.append(time.perf_counter() - t0)
        assert done.returncode == 0, done.stderr
    life = min(lives)
    n, batch = 50, 2
    outcomes = []
    for first in range(0, n, batch):
        procs = []
        for i in range(first, first + batch):
            sig = signal.SIGTERM if i % 2 == 0 else signal.SIGINT
            out = tmp_path / f"r{i}"
            proc = _program(["run", str(cfg), "--out", str(out), "--quiet"])
            procs.append((i, sig, out, proc, time.perf_counter() + rng.uniform(0.0, 0.8 * life)))
        for i, sig, out, proc, when in procs:
            if sig == signal.SIGINT:  # Python's own SIGINT handler is there from the start: wait for ours
                while not _catches_sigterm(proc.pid) and proc.poll() is None:
                    time.sleep(0.002)
            time.sleep(max(0.0, when - time.perf_counter()))
            sent = _running(proc.pid)
            if sent:  # os.kill, not Popen.send_signal, which skips a process that has just exited
                os.kill(proc.pid, sig)
            _, err = proc.communicate(timeout=300)
            outcomes.append((i, sig, sent, proc.returncode, err, out))
    for i, sig, sent, code, err, out in outcomes:
        assert "Traceback" not in err and "Exception ignored" not in err, (i, err)
        if not sent:  # finished before the moment came: a complete run
            assert code == 0, (i, err)
            continue
        assert code == 130 or (sig == signal.SIGTERM and code == -signal.SIGTERM), (i, code, err)
        for path in out.glob("*.h5") if out.exists() else ():
            with mf.load(path) as tr:
                assert tr.status in ("interrupted", "completed"), (i, path, tr.status)
        if i % 3:
            continue
        resumed = subprocess.run([sys.executable, "-m", "meanfield", "run", str(cfg), "--out", str(out),
                                  "--quiet", "--resume"], env=dict(os.environ, NUMBA_NUM_THREADS="1"),
                                 capture_output=True, text=True)
        assert resumed.returncode == 0, (i, resumed.stderr)
        for s in ("mean_field", "ntk"):
            with mf.load(out / f"sig_{s}.h5") as a, mf.load(ref / f"sig_{s}.h5") as b:
                assert a.status == "completed"
                np.testing.assert_array_equal(a.last_state().theta, b.last_state().theta)
    assert sum(sent for _, _, sent, *_ in outcomes) >= 40


# --- info and exit codes --------------------------------------------------------------------------------------

def test_info_reports_a_damaged_particle_chunk(cfg, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out), "--quiet", "--set", "output.figure=false"]) == 0
    path = out / "tiny_mean_field.h5"
    assert main(["info", str(path)]) == 0
    assert "status completed" in capsys.readouterr().out
    with h5py.File(path, "r") as f:
        chunk = f["particles/neurons/position/value"].id.get_chunk_info(2)
    with open(path, "r+b") as fh:  # flip one byte inside the third particle snapshot
        fh.seek(chunk.byte_offset + chunk.size // 2)
        b = fh.read(1)
        fh.seek(chunk.byte_offset + chunk.size // 2)
        fh.write(bytes([b[0] ^ 0xFF]))
    assert main(["info", str(path)]) == 2
    captured = capsys.readouterr()
    assert "DAMAGED" in captured.out and "/particles/neurons/position/value" in captured.out
    assert captured.err.count("\n") == 1 and "tiny_mean_field.h5 is damaged" in captured.err


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


def test_importing_meanfield_loads_nothing_heavy():
    code = "import sys, meanfield; print(sorted(m for m in ('numba', 'h5py', 'ot', 'matplotlib') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"


def test_deferred_signal_is_raised_at_the_next_safe_point():
    with interrupt.deferred():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)  # the handler has run by now, and raised nothing
        assert interrupt.pending() == signal.SIGINT
        with pytest.raises(interrupt.Interrupted):
            interrupt.check()
    assert interrupt.pending() is None  # handled inside the block: nothing leaks to later work
    interrupt.check()
