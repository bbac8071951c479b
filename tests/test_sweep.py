"""Sweeps on Dask: the same sweep on the local default cluster, on a real scheduler with workers started here, and
run by run gives the same bits; a killed worker loses nothing; an interrupted sweep re-runs only what is missing;
failures are recorded; bad grids are refused before anything runs."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

pytest.importorskip("distributed")

import meanfield as mf  # noqa: E402
from meanfield.cli import main  # noqa: E402
from meanfield.errors import ConfigError  # noqa: E402
from meanfield.run import run_config  # noqa: E402
from meanfield.sweep import define, expand, load_sweep, parse_grid, sweep  # noqa: E402

BASE = """
[data]
kind = "teacher_student"
d = 3
n_train = 24
n_test = 40
k = 2
seed = 3
[model]
m = 8
activation = "tanh"
[dynamics]
dt = 0.2
integrator = "heun"
[run]
n_steps = {steps}
snapshot_every = {every}
[output]
figure = false
"""
GRID = '[sweep]\ngrid = {"model.m" = [8, 12], "model.scaling" = ["mean_field", "ntk"]}\nseeds = 2\n'
ENV = dict(os.environ, NUMBA_NUM_THREADS="1")


def _config(tmp_path, steps=20, every=10, sweep_table=GRID, name="sw.toml"):
    p = tmp_path / name
    p.write_text(BASE.format(steps=steps, every=every) + sweep_table)
    return p


def _final_states(folder):
    idx = load_sweep(folder)
    out = {}
    for i, run in enumerate(idx.columns["run"]):
        assert idx.columns["status"][i] == "completed", (run, idx.columns["error"][i])
        with idx.trajectory(i) as tr:
            out[run, idx.columns["scaling"][i]] = tr.last_state().theta
    return out


def test_grid_expansion_ids_and_refusals(tmp_path, capsys):
    assert expand({"a.x": [1, 2]}, {"b.y": [3, 4], "b.z": [5, 6]}, None) == [
        {"a.x": 1, "b.y": 3, "b.z": 5, "seed": None}, {"a.x": 1, "b.y": 4, "b.z": 6, "seed": None},
        {"a.x": 2, "b.y": 3, "b.z": 5, "seed": None}, {"a.x": 2, "b.y": 4, "b.z": 6, "seed": None}]
    assert parse_grid(["model.m=256,1024", "model.scaling=mean_field,ntk"]) == {
        "model.m": [256, 1024], "model.scaling": ["mean_field", "ntk"]}
    cfg = _config(tmp_path)
    sw = define(cfg)
    assert len(sw.points) == 8 and len(set(sw.ids)) == 8
    assert define(cfg, grid={"model.m": [8, 12, 16]}).ids[:8] == sw.ids  # ids survive a growing grid
    with pytest.raises(ConfigError, match="zip"):
        expand({}, {"a.x": [1, 2], "b.y": [1]}, None)
    # refused before anything runs: an unknown key, a bad value at one point, a malformed --grid
    for args, needle in ((["--grid", "model.mm=1,2"], "model.mm"), (["--grid", "model.m=8,-1"], "--grid model.m"),
                         (["--grid", "model.m"], "--grid"), (["--seeds", "0"], "--seeds")):
        out = tmp_path / "never"
        assert main(["sweep", str(cfg), "-o", str(out), "--quiet", *args]) == 2
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1 and "Traceback" not in err
        assert not out.exists()
    with pytest.raises(ConfigError, match=r"\[sweep\]"):
        mf.load_config(cfg)  # a single run refuses a sweep's table


@pytest.fixture
def real_cluster(tmp_path):
    """A `dask scheduler` and two `dask worker` processes (no nannies) on 127.0.0.1."""
    sched_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(sched_file)], env=ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    deadline = time.time() + 60
    while not sched_file.exists() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.2)
    address = json.loads(sched_file.read_text())["address"]
    workers = [subprocess.Popen([sys.executable, "-m", "dask", "worker", "--scheduler-file", str(sched_file),
                                 "--nthreads", "1", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1"],
                                env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
    procs += workers
    from distributed import Client

    with Client(address, timeout="30s") as c:
        c.wait_for_workers(2, timeout=60)
    try:
        yield address, workers
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_local_real_cluster_and_one_by_one_agree_bitwise(tmp_path, real_cluster):
    cfg = _config(tmp_path)
    said = []
    local = sweep(cfg, tmp_path / "local", workers=2, progress=False, log=said.append)
    assert local.counts() == {"completed": 8} and len(local) == 8
    # the local cluster listens on loopback only, and says where its dashboard is
    assert said[0].startswith("Dask local cluster: scheduler tcp://127.0.0.1:") and "dashboard http://127.0.0.1:" in said[0]
    address, _ = real_cluster
    remote = sweep(cfg, tmp_path / "remote", scheduler=address, progress=False)
    a, b = _final_states(local.folder), _final_states(remote.folder)
    assert a.keys() == b.keys()
    sw = define(cfg)
    for run_id, conf in zip(sw.ids, sw.configs):  # the same runs, one by one, in this process
        res = run_config(conf, tmp_path / "single" / run_id)
        for r in res.runs:
            theta = mf.load(r.path).last_state().theta
            np.testing.assert_array_equal(a[run_id, r.scaling], theta)
            np.testing.assert_array_equal(b[run_id, r.scaling], theta)
    for col in ("train_loss", "w2_to_init"):
        np.testing.assert_array_equal(local.columns[col], remote.columns[col])
    # the index: one row per run, parameters and seeds as swept, a DataFrame-or-dict table, seed reductions
    assert sorted(set(local.columns["model.m"])) == [8, 12] and sorted(set(local.columns["seed"])) == [0, 1]
    stats = local.reduce("train_loss")
    assert len(stats["mean"]) == 4 and np.all(stats["std"] >= 0)
    i = int(np.flatnonzero((local.columns["model.m"] == 8) & (local.columns["model.scaling"] == "ntk"))[0])
    j = int(np.flatnonzero((stats["model.m"] == 8) & (stats["model.scaling"] == "ntk"))[0])
    pair = local.columns["train_loss"][(local.columns["model.m"] == 8) & (local.columns["model.scaling"] == "ntk")]
    assert stats["mean"][j] == pytest.approx(pair.mean(), rel=1e-15) and local.columns["status"][i] == "completed"
    assert (local.folder / "index.csv").read_text().count("\n") == 9


def test_a_killed_worker_loses_nothing(tmp_path, real_cluster):
    """One of two workers is killed while it runs a point: the point is retried on the other worker (which
    continues or rewrites its file) and every run is in the index exactly once, with the final state of an
    uninterrupted run. (The busy worker is found from the run file it writes: a second Dask client in this
    process would share the sweep's event loop.)"""
    cfg = _config(tmp_path, steps=1500, every=100,
                  sweep_table='[sweep]\ngrid = {"model.m" = [24, 32, 40]}\nseeds = 2\n')
    address, workers = real_cluster
    by_pid = {w.pid: w for w in workers}
    out = tmp_path / "killed"
    result = {}
    t = threading.Thread(target=lambda: result.update(idx=sweep(cfg, out, scheduler=address, progress=False)))
    t.start()
    killed = None
    deadline = time.time() + 120
    while killed is None and time.time() < deadline:  # the writer of a run file in progress is a busy worker
        for path in (out / "runs").rglob("*.h5") if (out / "runs").exists() else ():
            try:
                with mf.load(path) as tr:
                    writer, status = int(tr.provenance.get("pid", -1)), tr.status
            except mf.FileFormatError:
                continue
            if status == "running" and writer in by_pid:
                killed = writer
                os.kill(killed, signal.SIGKILL)
                by_pid[killed].wait()
                break
        time.sleep(0.02)
    t.join(timeout=300)
    assert killed is not None and not t.is_alive()
    idx = result["idx"]
    assert idx.counts() == {"completed": 6} and len(idx) == 6 and len(set(idx.columns["run"])) == 6
    sw = define(cfg)
    for run_id, conf in zip(sw.ids, sw.configs):
        ref = run_config(conf, tmp_path / "ref" / run_id).runs[0]
        row = int(np.flatnonzero(idx.columns["run"] == run_id)[0])
        with idx.trajectory(row) as tr, mf.load(ref.path) as b:
            assert tr.status == "completed"
            np.testing.assert_array_equal(tr.last_state().theta, b.last_state().theta)
            np.testing.assert_array_equal(tr.steps, b.steps)


def test_interrupted_sweep_reruns_only_the_missing_runs(tmp_path):
    cfg = _config(tmp_path, steps=1500, every=100,
                  sweep_table='[sweep]\ngrid = {"model.m" = [24, 32, 40, 48]}\n')
    out = tmp_path / "int"
    proc = subprocess.Popen([sys.executable, "-m", "meanfield", "sweep", str(cfg), "-o", str(out), "--workers", "1",
                             "--quiet"], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        index = out / "index.csv"
        if index.exists() and ",completed," in index.read_text():
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    first = load_sweep(out)
    done = {r for r, s in zip(first.columns["run"], first.columns["status"]) if s == "completed"}
    assert 1 <= len(done) < 4 and set(first.columns["status"]) <= {"completed", "pending"}
    before = {r: first.path(i).read_bytes() for i, r in enumerate(first.columns["run"]) if r in done}
    second = sweep(cfg, out, workers=1, progress=False)
    assert second.counts() == {"completed": 4}
    for i, r in enumerate(second.columns["run"]):
        if r in done:  # not run again: same file, same recorded wall time
            assert second.path(i).read_bytes() == before[r]
            assert second.columns["seconds"][i] == first.columns["seconds"][list(first.columns["run"]).index(r)]


def test_a_failing_point_is_recorded_and_the_rest_completes(tmp_path, capsys):
    cfg = _config(tmp_path, sweep_table='[sweep]\ngrid = {"dynamics.lr" = [1.0, 1e9]}\n')
    out = tmp_path / "fail"
    assert main(["sweep", str(cfg), "-o", str(out), "--workers", "1", "--quiet"]) == 1
    idx = load_sweep(out)
    by_lr = dict(zip(idx.columns["dynamics.lr"], idx.columns["status"]))
    assert by_lr == {1.0: "completed", 1e9: "diverged"}
    err = idx.columns["error"][idx.columns["status"] == "diverged"][0]
    assert "diverged" in err
    assert main(["sweep-info", str(out)]) == 0
    assert "1 completed, 1 diverged" in capsys.readouterr().out


def test_workers_must_be_able_to_write_the_folder(tmp_path, capsys):
    """A sweep whose workers cannot write its folder fails at start, with one line naming output.dir. The folder
    is writable here but not for the worker: as root, the worker runs in its own mount namespace where the folder
    is bind-mounted read-only (a shared file system the workers do not see as writable); as another user, the
    folder is made read-only."""
    cfg = _config(tmp_path, sweep_table='[sweep]\ngrid = {"model.m" = [8]}\n')
    out = tmp_path / "ro"
    (out / "runs").mkdir(parents=True)
    args = ["sweep", str(cfg), "-o", str(out), "--quiet"]
    procs = []
    try:
        if os.geteuid() == 0:
            import shutil

            if shutil.which("unshare") is None:
                pytest.skip("needs unshare(1) to give a worker a read-only view of the folder")
            sched_file = tmp_path / "s.json"
            procs.append(subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port",
                                           "0", "--no-dashboard", "--scheduler-file", str(sched_file)], env=ENV,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            deadline = time.time() + 60
            while not sched_file.exists() and time.time() < deadline:
                time.sleep(0.1)
            time.sleep(0.2)
            address = json.loads(sched_file.read_text())["address"]
            worker = f"mount --bind -o ro '{out}' '{out}' && exec '{sys.executable}' -m dask worker {address} " \
                     "--nthreads 1 --no-nanny --no-dashboard --host 127.0.0.1"
            procs.append(subprocess.Popen(["unshare", "-m", "sh", "-c", worker], env=ENV,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            from distributed import Client

            with Client(address, timeout="30s") as c:
                c.wait_for_workers(1, timeout=60)
            args += ["--scheduler", address]
        else:
            os.chmod(out, 0o555)
            args += ["--workers", "1"]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "output.dir" in err and "every worker can write" in err and err.count("\n") == 1
        assert not (out / "index.csv").exists()
    finally:
        os.chmod(out, 0o755)
        for p in procs:
            p.kill()
            p.wait()
