"""The H5MD recorder: round trip, H5MD 1.1 structure (own checker and pyh5md), statuses, SIGTERM, SIGKILL at
random moments with resume to the bitwise same final state."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import h5py
import numba
import numpy as np
import pyh5md
import pytest

import meanfield as mf
from meanfield.data import from_recipe, teacher_student
from meanfield.errors import ConfigError, DivergenceError, FileFormatError
from meanfield.h5md import Recorder
from meanfield.observers import default_observers, observer
from meanfield.run import simulate
from meanfield.trajectory import first_state, last_state, load

from _replay import crash_states, operations, strace_command, strace_works, torn_rewrites

HERE = os.path.dirname(os.path.abspath(__file__))
KILL_SCRIPT = os.path.join(HERE, "_kill_run.py")
N_STEPS, EVERY, SHORT_STEPS = 300, 2, 16  # as in _kill_run.py
N_SNAPSHOTS = N_STEPS // EVERY + 1


@pytest.fixture
def one_thread():
    """In-process runs on one numba thread (results do not depend on it; it avoids oversubscription)."""
    old = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(old)


def small_problem(bias=False, n_test=5):
    ds = teacher_student(2, 8, n_test, k=1, activation="tanh", seed=2)
    model = mf.Model(d=2, m=12, activation="tanh", bias=bias)
    return ds, model, mf.particle_flow(ds, model, mf.Dynamics(lr=0.5, dt=0.05)), mf.init_particles(model, 4)


# ------------------------------------------------------------------------------------------------------------
# an independent structural check of the H5MD 1.1 rules (from the specification, not from the writer)


def _s(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def _check_element(el, where, live=False):
    assert isinstance(el, h5py.Group), f"{where} is not a group"
    assert {"step", "value"} <= set(el), f"{where} lacks step/value"
    step, value = el["step"], el["value"]
    assert step.dtype.kind in "iu", f"{where}/step is not integer"
    if step.shape == ():  # fixed stepping: allowed by H5MD, not used by meanfield
        return
    # A file being written (or left by a killed writer) may hold one uncommitted row: meanfield extends value
    # and time first and writes the step last; an unwritten step reads as the fill value -1. A closed file has
    # equal lengths and only real steps, as H5MD requires.
    s = step[:]
    committed = len(s) - (1 if live and len(s) and s[-1] == -1 else 0)
    extra = (0, 1) if live else (0,)
    for key in ("step", "value") + (("time",) if "time" in el else ()):
        assert el[key].shape[0] - committed in extra, f"{where}/{key}: length differs from the steps"
    assert step.maxshape[0] is None and value.maxshape[0] is None, f"{where} is not extensible"
    assert np.all(np.diff(s[:committed]) > 0) and np.all(s[:committed] >= 0), f"{where}/step not increasing"
    if "time" in el:
        assert el["time"].dtype.kind == "f", f"{where}/time is not floating point"


def check_h5md(path, flows=("neurons",), swmr=False):
    """Assert the H5MD 1.1 rules on a file; returns the number of elements checked. ``swmr``: the file is
    being written or its writer was killed."""
    kw = dict(libver="latest", swmr=True) if swmr else {}
    n = 0
    with h5py.File(path, "r", **kw) as f:
        h5md = f["h5md"]
        assert list(np.asarray(h5md.attrs["version"])) == [1, 1]
        assert np.asarray(h5md.attrs["version"]).dtype.kind in "iu"
        assert _s(h5md["author"].attrs["name"])
        assert _s(h5md["creator"].attrs["name"]) == "meanfield"
        assert _s(h5md["creator"].attrs["version"]) == mf.__version__
        assert set(f) <= {"h5md", "particles", "observables", "parameters", "connectivity", "scratch"}
        for name in flows:
            g = f["particles"][name]
            box = g["box"]
            dim = int(box.attrs["dimension"])
            boundary = [_s(b) for b in box.attrs["boundary"]]
            assert len(boundary) == dim and set(boundary) <= {"none", "periodic"}
            assert set(boundary) == {"none"} or "edges" in box
            pos = g["position"]
            _check_element(pos, f"/particles/{name}/position", swmr)
            assert pos["value"].ndim == 3 and pos["value"].shape[2] == dim
            assert pos["value"].chunks[0] == 1 and pos["value"].chunks[1:] == pos["value"].shape[1:]
            if "id" in g:
                assert g["id"].shape == (pos["value"].shape[1],) and g["id"].dtype.kind in "iu"
            n += 1

        def visit(name, obj):
            nonlocal n
            if isinstance(obj, h5py.Group) and "value" in obj:
                _check_element(obj, "/observables/" + name, swmr)
                n += 1

        f["observables"].visititems(visit)
    return n


def check_pyh5md(path, flows=("neurons",), swmr=False):
    """Open with the pyh5md reader and read every particles element through it."""
    kw = dict(libver="latest", swmr=True) if swmr else {}
    with pyh5md.File(path, "r", **kw) as f:
        out = {}
        for name in flows:
            g = f["particles"][name]
            el = pyh5md.element(g, "position")
            assert el.element_type == "TimeElement"
            assert int(g["box"].attrs["dimension"]) == el.value.shape[2]
            out[name] = (el.step[:], el.time[:], el.value[:])
        for key in f["observables"]:
            if "value" in f["observables"][key]:
                assert pyh5md.element(f["observables"], key).element_type == "TimeElement"
        return out


# ------------------------------------------------------------------------------------------------------------
# round trip


@pytest.mark.parametrize("compression,dtype,subset", [
    ("gzip", "float64", None), ("lzf", "float32", 5), ("none", "float64", [0, 3, 7]),
])
def test_round_trip(tmp_path, one_thread, compression, dtype, subset):
    ds, model, flow, theta0 = small_problem()
    path = tmp_path / "run.h5"
    config = {"model": {"m": 12, "activation": "tanh", "seed": 4, "layer_lr": [1.0, 2.0]},
              "run": {"n_steps": 17, "snapshot_every": 3, "scalings": ["mean_field"]},
              "output": {"particle_subset": subset, "compression": compression}}
    rec = Recorder(path, config=config, data=ds, seed=4, compression=compression, particles_dtype=dtype,
                   particle_subset=subset)
    res = simulate(flow, theta0, n_steps=17, snapshot_every=3, recorder=rec.sink())
    assert list(res.steps) == [0, 3, 6, 9, 12, 15, 17]
    assert check_h5md(path) == 1 + len(res.observables)
    via_pyh5md = check_pyh5md(path)["neurons"]
    with load(path) as traj:
        assert traj.status == "completed" and traj.flows == ("neurons",)
        np.testing.assert_array_equal(traj.steps, res.steps)
        np.testing.assert_array_equal(traj.times, res.times)
        assert set(traj.observables) == set(res.observables)
        for key, value in res.observables.items():
            s = traj.observables[key]
            np.testing.assert_array_equal(s.value, value)
            np.testing.assert_array_equal(s.step, res.steps)
            np.testing.assert_array_equal(s.time, res.times)
        ids = np.arange(12) if subset is None else (
            np.array(subset) if isinstance(subset, list) else traj.particles.ids)
        assert len(ids) == (12 if subset is None else len(traj.particles.ids))
        np.testing.assert_array_equal(traj.particles.ids, ids)
        expected = res.theta[:, ids, :].astype(dtype).astype(np.float64)
        np.testing.assert_array_equal(traj.particles.read(), expected)
        np.testing.assert_array_equal(via_pyh5md[2], expected.astype(dtype))
        np.testing.assert_array_equal(via_pyh5md[0], res.steps)
        # the complete configuration, as JSON and as attributes
        assert traj.config == json.loads(json.dumps(config))
        with h5py.File(path, "r") as f:
            attrs = f["parameters/config/model"].attrs
            assert attrs["m"] == 12 and attrs["activation"] == "tanh"
            np.testing.assert_array_equal(attrs["layer_lr"], [1.0, 2.0])
            assert f["parameters/config/run"].attrs["scalings"][0] == b"mean_field"
            assert f["value" if False else "particles/neurons/position/value"].compression == (
                None if compression == "none" else compression)
        # the data set is rebuilt from its recipe, bit for bit
        rebuilt = from_recipe(traj.data["recipe"])
        np.testing.assert_array_equal(rebuilt.X, ds.X)
        np.testing.assert_array_equal(rebuilt.y_test, ds.y_test)
        np.testing.assert_array_equal(traj.data["teacher"], ds.teacher)
        assert traj.seed == 4
        assert traj.rng_state == json.loads(json.dumps(np.random.default_rng(4).bit_generator.state))
        assert traj.provenance["numpy"] == np.__version__ and traj.provenance["h5py"] == h5py.__version__
        for key in ("meanfield", "numba", "scipy", "pot", "python", "start_time"):
            assert traj.provenance[key]
        assert traj.end_time >= traj.start_time
        assert traj.model == model.describe() and traj.dynamics == flow.dynamics.describe()
        # full-precision states even when particles are stored lossy
        np.testing.assert_array_equal(traj.last_state().theta, res.state.theta)
        assert traj.last_state().step == 17
        np.testing.assert_array_equal(traj.first_state().theta, theta0)


def test_arrays_data_stored_when_no_recipe(tmp_path, one_thread):
    X = np.linspace(-1, 1, 10).reshape(5, 2)
    y = np.sin(X[:, 0])
    model = mf.Model(d=2, m=6, activation="tanh")
    flow = mf.particle_flow((X, y), model, mf.Dynamics(dt=0.1))
    path = tmp_path / "a.h5"
    simulate(flow, mf.init_particles(model, 0), n_steps=3, recorder=Recorder(path).sink())
    with load(path) as traj:
        np.testing.assert_array_equal(traj.data["arrays"]["X"], X)
        np.testing.assert_array_equal(traj.data["arrays"]["y"], y)
        assert traj.seed is None and traj.config is None
        assert set(traj.observables) == {"train_loss", "displacement", "identity_bound", "w2_to_init", "w2_stderr"}


def test_second_flow_group(tmp_path, one_thread):
    ds, model, flow, theta0 = small_problem()
    path = tmp_path / "two.h5"
    rec = Recorder(path, data=ds)
    res = simulate(flow, theta0, n_steps=6, snapshot_every=2, recorder=rec.sink())
    flow2 = mf.particle_flow(ds, model, mf.Dynamics(lr=0.1, dt=0.05))
    res2 = simulate(flow2, theta0, n_steps=4, snapshot_every=1, recorder=rec.sink("linearized"))
    assert check_h5md(path, flows=("neurons", "linearized")) == 2 + len(res.observables) + len(res2.observables)
    check_pyh5md(path, flows=("neurons", "linearized"))
    with load(path) as traj:
        assert traj.status == "completed" and set(traj.flows) == {"neurons", "linearized"}
        lin = traj.flow("linearized")
        np.testing.assert_array_equal(lin.particles.read(), res2.theta)
        np.testing.assert_array_equal(lin.steps, [0, 1, 2, 3, 4])
        for key, value in res2.observables.items():
            np.testing.assert_array_equal(lin.observables[key].value, value)
        np.testing.assert_array_equal(traj.particles.read(), res.theta)
        assert lin.dynamics["lr"] == 0.1 and traj.dynamics["lr"] == 0.5
    with h5py.File(path, "r") as f:
        assert "observables/linearized/train_loss/value" in f


def test_diverged_and_interrupted_status(tmp_path, one_thread):
    ds, model, _, theta0 = small_problem()
    flow = mf.particle_flow(ds, model, mf.Dynamics(lr=1.0, dt=1e8))
    path = tmp_path / "div.h5"
    with pytest.raises(DivergenceError) as err:
        simulate(flow, theta0, n_steps=50, snapshot_every=1, recorder=Recorder(path).sink())
    with load(path) as traj:
        assert traj.status == "diverged"
        np.testing.assert_array_equal(traj.steps, err.value.result.steps)
        assert np.all(np.isfinite(traj.particles.read()))
    # an observer that is interrupted at the third snapshot (Ctrl-C)
    _, _, flow, _ = small_problem()
    calls = []

    def obs(state):
        calls.append(state.step)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return float(state.step)

    path = tmp_path / "int.h5"
    with pytest.raises(KeyboardInterrupt):
        simulate(flow, theta0, n_steps=10, observers=[observer("s", obs)], recorder=Recorder(path).sink())
    with h5py.File(path, "r") as f:  # closed properly: opens without SWMR
        assert f["parameters/status"][()].rstrip(b"\x00") == b"interrupted"
        assert f["parameters/end_time"][()] != b""
    with load(path) as traj:
        assert traj.status == "interrupted"
        np.testing.assert_array_equal(traj.observables["s"].value, [0.0, 1.0])
    check_h5md(path)


def test_bad_arguments(tmp_path):
    with pytest.raises(ConfigError, match="compression"):
        Recorder(tmp_path / "x.h5", compression="zstd")
    with pytest.raises(ConfigError, match="particles_dtype"):
        Recorder(tmp_path / "x.h5", particles_dtype="float16")
    with pytest.raises(ConfigError, match="particle_subset"):
        Recorder(tmp_path / "x.h5", particle_subset=0)
    with pytest.raises(ConfigError, match="seed"):
        Recorder(tmp_path / "x.h5", seed=-1)
    with pytest.raises(ConfigError, match="flow name"):
        Recorder(tmp_path / "x.h5").sink("a/b")
    assert not (tmp_path / "x.h5").exists()


def test_resume_in_process_is_bitwise(tmp_path, one_thread):
    """Stop after 7 steps, continue from the file: same file content and final state as 13 steps at once."""
    ds, model, _, theta0 = small_problem()
    dyn = mf.Dynamics(dt=0.05, integrator="euler_maruyama", temperature=0.01, seed=9)
    flow = mf.particle_flow(ds, model, dyn)
    ref = simulate(flow, theta0, n_steps=13, snapshot_every=2, recorder=Recorder(tmp_path / "ref.h5",
                                                                                particles_dtype="float32").sink())
    path = tmp_path / "res.h5"
    simulate(flow, theta0, n_steps=7, snapshot_every=2, recorder=Recorder(path, particles_dtype="float32").sink())
    state = last_state(path)
    assert state.step == 7
    observers = default_observers(flow, first_state(path).theta)
    out = simulate(flow, state, n_steps=6, snapshot_every=2, observers=observers,
                   recorder=Recorder(path, resume=True, particles_dtype="float32").sink())
    np.testing.assert_array_equal(out.state.theta, ref.state.theta)
    np.testing.assert_array_equal(last_state(path).theta, ref.state.theta)
    with load(path) as a, load(tmp_path / "ref.h5") as b:
        assert a.status == "completed"
        np.testing.assert_array_equal(a.steps, [0, 2, 4, 6, 7, 9, 11, 13])
        np.testing.assert_array_equal(b.steps, [0, 2, 4, 6, 8, 10, 12, 13])
        both = [i for i, s in enumerate(b.steps) if s in a.steps]
        for key in b.observables:
            np.testing.assert_array_equal(a.observables[key].value[[list(a.steps).index(s) for s in b.steps[both]]],
                                          b.observables[key].value[both])
        assert json.loads(a.provenance["resumed"])[0]["pid"] == os.getpid()
    check_h5md(path)


# ------------------------------------------------------------------------------------------------------------
# subprocess runs: SIGTERM, SIGKILL at random moments, resume


def _env():
    return dict(os.environ, NUMBA_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        [os.path.dirname(HERE)] + os.environ.get("PYTHONPATH", "").split(os.pathsep)))


def _start(path, variant, hold_after=0, pace=0.0):
    env = dict(_env(), MEANFIELD_TEST_HOLD_AFTER=str(hold_after), MEANFIELD_TEST_PACE=str(pace))
    return subprocess.Popen([sys.executable, KILL_SCRIPT, "run", str(path), variant], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def test_sigterm_marks_interrupted_and_file_is_readable_while_written(tmp_path):
    path = tmp_path / "term.h5"
    proc = _start(path, "full", hold_after=6)  # the run waits after 6 snapshots: still running at the signal
    try:
        assert proc.stdout.readline().strip() == "ready"
        seen = [proc.stdout.readline() for _ in range(5)]
        # read the file while it is being written (SWMR)
        with load(path) as traj:
            assert traj.status == "running"
            assert len(traj.particles) >= 5
            assert traj.end_time == ""
            np.testing.assert_array_equal(traj.steps[:5], [int(s) for s in seen])
        check_h5md(path, swmr=True)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    with h5py.File(path, "r") as f:  # closed properly: no SWMR flags left
        assert f["parameters/status"][()].rstrip(b"\x00") == b"interrupted"
    with load(path) as traj:
        assert traj.status == "interrupted" and traj.end_time
        assert len(traj.particles) >= 5 + len(out.split())
    check_h5md(path)
    check_pyh5md(path)


def test_sigkill_at_random_moments_then_resume(tmp_path, rng):
    """Ten runs killed with SIGKILL at random moments (two storage variants); every snapshot announced as
    flushed is in the file, equal to the uninterrupted run; continuing each file gives the same final state
    bitwise, and the same observables at every snapshot."""
    n = 10
    delays = np.concatenate([[0.0, 0.02], rng.uniform(0.0, 0.8, n - 2)])
    variants = ["full" if i % 2 == 0 else "lossy" for i in range(n)]
    paths = [tmp_path / f"k{i}.h5" for i in range(n)]
    procs = [_start(p, v, pace=0.01) for p, v in zip(paths, variants)]  # each run lasts >= 150 x 0.01 s
    outputs = [None] * n

    def kill_later(i):
        proc = procs[i]
        assert proc.stdout.readline().strip() == "ready"
        lines = []
        t_end = time.monotonic() + delays[i]
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")))
        reader.start()
        time.sleep(max(0.0, t_end - time.monotonic()))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        reader.join()
        proc.stdout.close()
        proc.stderr.close()
        outputs[i] = [int(s) for s in lines if s.strip()]

    threads = [threading.Thread(target=kill_later, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for proc in procs:
        proc.kill()
        proc.wait()
    killed_mid_run = 0
    for i, path in enumerate(paths):
        flushed = outputs[i]
        assert flushed is not None, f"run {i} did not start"
        if not path.exists():  # killed before the first snapshot was complete: nothing was announced
            assert flushed == []
            continue
        with load(path) as traj:
            assert traj.status in ("running", "completed")
            assert set(flushed) <= set(traj.steps.tolist())
            assert len(traj.steps) <= len(flushed) + 1
            assert traj.status == "completed" or len(traj.steps) < N_SNAPSHOTS
            killed_mid_run += traj.status == "running"
        check_h5md(path, swmr=True)
        check_pyh5md(path, swmr=True)
    assert killed_mid_run >= 3
    saved = {}
    for i, path in enumerate(paths):
        if path.exists():
            with load(path) as traj:
                saved[i] = (traj.steps.copy(), traj.particles.read(), {k: s.value.copy() for k, s in
                                                                     traj.observables.items()})
    groups = {v: [str(p) for p, w in zip(paths, variants) if w == v] for v in ("full", "lossy")}
    finishing = {v: subprocess.Popen([sys.executable, KILL_SCRIPT, "finish", v] + mine, env=_env(),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for v, mine in groups.items()}
    for variant, proc in finishing.items():
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    for variant, mine in groups.items():
        with load(mine[0] + ".ref") as ref:
            ref_state = ref.last_state()
            assert ref_state.step == N_STEPS
            ref_obs = {k: s.value for k, s in ref.observables.items()}
            ref_particles, ref_steps = ref.particles.read(), ref.steps
        for p in mine:
            i = paths.index(type(paths[0])(p))
            with load(p) as traj:
                assert traj.status == "completed"
                final = traj.last_state()
                assert final.step == N_STEPS
                np.testing.assert_array_equal(final.theta, ref_state.theta)  # bitwise
                np.testing.assert_array_equal(traj.steps, ref_steps)
                np.testing.assert_array_equal(traj.particles.read(), ref_particles)
                for key, value in ref_obs.items():
                    np.testing.assert_array_equal(traj.observables[key].value, value)
            if i in saved:  # what was flushed before the kill is unchanged and equals the reference
                steps, particles, obs = saved[i]
                np.testing.assert_array_equal(particles, ref_particles[: len(steps)])
                for key, value in obs.items():
                    np.testing.assert_array_equal(value, ref_obs[key][: len(value)])
            check_h5md(p)
            check_pyh5md(p)


def _every_crash_state(tmp_path, mode, variant, path, initial=None):
    """Run ``_kill_run.py MODE PATH VARIANT`` under strace, then load every file a SIGKILL could have left
    (after each write call, and torn between the pages of each write that crosses one). Each must load, be a
    prefix of the finished run, equal to it, and hold every snapshot announced as flushed by then (and all
    that ``initial`` held). Returns the number of states checked."""
    trace = tmp_path / f"{mode}.trace"
    proc = subprocess.run(strace_command(trace) + [sys.executable, KILL_SCRIPT, mode, str(path), variant],
                          env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with load(path) as final:
        assert final.status == "completed"
        steps, particles = final.steps.copy(), final.particles.read()
        series = {k: (s.step.copy(), np.asarray(s.value).copy()) for k, s in final.observables.items()}
    assert len(series) >= 3
    ops = operations(trace, tmp_path)
    assert torn_rewrites(ops, path.name, initial) == []  # the property behind the argument (docs/hdf5-format.md)
    kept = 0
    if initial:
        with load(path.with_name("initial.h5")) as first:
            kept = len(first.steps)
    probe = tmp_path / "state.h5"
    opened = 0
    for label, content, stdout in crash_states(ops, path.name, initial):
        announced = [int(w) for w in stdout.decode().split() if w.isdigit()]
        if content is None:  # a fresh file appears only once its first snapshot is complete
            assert announced == [], label
            continue
        probe.write_bytes(content)
        try:
            traj = load(probe)
        except FileFormatError as exc:
            pytest.fail(f"{label}: {exc}")
        with traj:
            k = len(traj.steps)
            assert traj.status in ("running", "completed"), label
            assert set(announced) <= set(traj.steps.tolist()) and k >= kept, label
            np.testing.assert_array_equal(traj.steps, steps[:k], err_msg=label)
            np.testing.assert_array_equal(traj.particles.read(), particles[:k], err_msg=label)
            for key, (s, v) in series.items():
                got = traj.observables[key]
                np.testing.assert_array_equal(got.step, s[: len(got.step)], err_msg=f"{label}: {key}")
                np.testing.assert_array_equal(got.value, v[: len(got.step)], err_msg=f"{label}: {key}")
                assert len(got.step) >= k - 1, f"{label}: {key}"
        opened += 1
    return opened, len(steps)


needs_strace = pytest.mark.skipif(not strace_works(),
                                  reason="needs strace and ptrace (Debian: apt-get install strace)")


@needs_strace
@pytest.mark.parametrize("variant", ["full", "lossy"])
def test_every_state_a_sigkill_can_leave_opens_with_its_flushed_snapshots(tmp_path, variant):
    """Exhaustive form of the kill test on a fresh run: every state a SIGKILL can leave is checked."""
    opened, n = _every_crash_state(tmp_path, "short", variant, tmp_path / "run.h5")
    assert n == SHORT_STEPS // EVERY + 1 and opened > 20 * n


@needs_strace
def test_every_state_a_sigkill_can_leave_while_resuming(tmp_path):
    """The same while a run is resumed: the copy, the repair and the continued snapshots; no state loses a
    snapshot of the first run."""
    path = tmp_path / "run.h5"
    proc = subprocess.run([sys.executable, KILL_SCRIPT, "short", str(path), "lossy"], env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    shutil.copyfile(path, tmp_path / "initial.h5")
    opened, n = _every_crash_state(tmp_path, "extend", "lossy", path, initial={path.name: path.read_bytes()})
    assert n == 2 * SHORT_STEPS // EVERY + 1 and opened > 20 * (n // 2)


def test_resume_the_image_of_a_killed_writer(tmp_path, one_thread):
    """A copy taken mid-run (superblock still marked open for writing) is repaired and continued in place."""
    import shutil

    ds, model, flow, theta0 = small_problem()
    path, copy = tmp_path / "live.h5", tmp_path / "killed.h5"
    observers = default_observers(flow, theta0)
    taken = []

    def snap(state):
        if state.step == 4 and not taken:
            shutil.copy(path, copy)
            taken.append(True)
        return 0.0

    ref = simulate(flow, theta0, n_steps=10, snapshot_every=2, observers=observers + [observer("snap", snap)],
                   recorder=Recorder(path).sink())
    state = last_state(copy)
    assert state.step == 2
    out = simulate(flow, state, n_steps=8, snapshot_every=2, observers=observers + [observer("snap", lambda s: 0.0)],
                   recorder=Recorder(copy, resume=True).sink())
    np.testing.assert_array_equal(out.state.theta, ref.state.theta)
    with h5py.File(copy, "r") as f:  # plain open works again: flags cleared, file closed properly
        assert f["parameters/status"][()].rstrip(b"\x00") == b"completed"
    with load(copy) as a:
        np.testing.assert_array_equal(a.particles.read(), ref.theta)
        for key, value in ref.observables.items():
            np.testing.assert_array_equal(a.observables[key].value, value)
    check_h5md(copy)


KILL_DURING_SECOND_FLOW = r"""
import os, signal, sys
import meanfield as mf
from meanfield import h5md
from meanfield.data import teacher_student
from meanfield.run import simulate

ds = teacher_student(2, 8, 5, k=1, activation="tanh", seed=2)
model = mf.Model(d=2, m=12, activation="tanh")
flow = mf.particle_flow(ds, model, mf.Dynamics(lr=0.5, dt=0.05))
theta0 = mf.init_particles(model, 4)
rec = h5md.Recorder(sys.argv[1], data=ds)
simulate(flow, theta0, n_steps=4, snapshot_every=2, recorder=rec.sink())   # primary flow: steps 0, 2, 4
create = h5md.Sink._create

def create_then_die(self, f, *args):
    create(self, f, *args)          # the second flow's groups and datasets exist, nothing renamed yet
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)

h5md.Sink._create = create_then_die
simulate(flow, theta0, n_steps=4, snapshot_every=2, recorder=rec.sink("linearized"))
"""


def test_sigkill_while_a_second_flow_is_being_created_leaves_the_first_intact(tmp_path):
    path = tmp_path / "two.h5"
    proc = subprocess.run([sys.executable, "-c", KILL_DURING_SECOND_FLOW, str(path)], env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with load(path) as traj:
        assert traj.status == "completed" and traj.flows == ("neurons",)
        np.testing.assert_array_equal(traj.steps, [0, 2, 4])
    check_h5md(path)
    check_pyh5md(path)


def test_a_killed_but_unreaped_writer_counts_as_stopped():
    """A writer killed by a signal stays a zombie until its parent reaps it; it writes nothing, so a file it left
    may be resumed (a sweep's killed Dask worker is such a process)."""
    from meanfield.h5md import _pid_alive

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert _pid_alive(child.pid)
        child.kill()
        deadline = time.time() + 10
        while _pid_alive(child.pid) and time.time() < deadline:
            time.sleep(0.01)
        with open(f"/proc/{child.pid}/stat") as fh:  # not reaped yet: still listed, as a zombie
            assert fh.read().rsplit(")", 1)[1].split()[0] == "Z"
        assert not _pid_alive(child.pid)
    finally:
        child.kill()
        child.wait()
