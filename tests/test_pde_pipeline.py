"""The PDE solver in the run pipeline: `meanfield run` on the pde configurations against the same solve done
directly with meanfield.pde (bitwise), the /fields/density layout read with plain h5py and with meanfield.load,
bad configurations refused before anything is written, outflow, and interrupt + resume."""

import os
import signal
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import meanfield as mf
from meanfield import pde
from meanfield.cli import main
from meanfield.data import teacher_student
from meanfield.errors import FileFormatError
from meanfield.model import Model
from meanfield.observers import Observer
from meanfield.trajectory import info, verify

CONFIGS = Path(__file__).resolve().parent.parent / "examples" / "configs"

#: Each setting shrunk to a quick size with --set, and the same problem built directly from meanfield.pde.
QUICK = {
    "plane": ["pde.cells=40", "pde.quad_points=40", "run.t_end=0.5", "run.snapshot_dt=0.125", "pde.density_every=2"],
    "radial": ["pde.cells=200", "pde.radial_points=16", "pde.angular_points=8", "run.t_end=0.5",
               "run.snapshot_dt=0.125", "pde.density_every=3"],
}
FINITE = """
[data]
kind = "teacher_student"
d = 1
n_train = 9
k = 1
activation = "tanh"
seed = 4
[model]
activation = "tanh"
sigma_a = 0.8
[dynamics]
kind = "pde"
lr = 2.0
temperature = 0.01
[pde]
cells = [36, 44]
order = 1
cfl = 0.7
[run]
t_end = 0.4
snapshot_dt = 0.15
[output]
figure = false
"""


def _args(setting):
    return [f"--set={s}" for s in QUICK[setting]] + ["--set=output.figure=false", "--quiet"]


def _direct(setting):
    """(flow, initial law, snapshot times, density indices) of the quick run, from meanfield.pde alone."""
    if setting == "plane":
        prob = pde.plane_problem(teacher=[[1.0, 1.5], [-0.5, -0.7]], activation="erf", quad_points=40)
        init = Model(d=1, m=1, activation="erf")
        grid = pde.make_grid(prob, 40, initial=init, tolerance=1e-6, margin=1.5)
        params = pde.PDEParams(lr=1.0, temperature=0.0, order=2, cfl=0.9)
        every = 2
    elif setting == "radial":
        prob = pde.radial_problem(3, [[1.0, 1.5]], activation="softplus", a0=1.0, radial_points=16, angular_points=8)
        init = Model(d=3, m=1, activation="softplus", sigma_w=0.7)
        grid = pde.make_grid(prob, 200, initial=init, tolerance=1e-6, margin=1.5)
        params = pde.PDEParams(lr=4.0, order=2, cfl=0.9)
        every = 3
    else:
        ds = teacher_student(d=1, n_train=9, k=1, activation="tanh", seed=4)
        prob = pde.plane_problem(ds, teacher=ds.teacher, activation="tanh")
        init = Model(d=1, m=1, activation="tanh", sigma_a=0.8)
        grid = pde.make_grid(prob, (36, 44), initial=init, tolerance=1e-6, margin=1.5)
        params = pde.PDEParams(lr=2.0, temperature=0.01, order=1, cfl=0.7)
        return pde.pde_flow(prob, grid, params, tolerance=1e-6), init, np.array([0.0, 0.15, 0.3, 0.4]), [0, 1, 2, 3]
    times = np.array([0.0, 0.125, 0.25, 0.375, 0.5])
    dens = [k for k in range(len(times)) if k % every == 0 or k == len(times) - 1]
    return pde.pde_flow(prob, grid, params, tolerance=1e-6), init, times, dens


def _run(setting, out, extra=()):
    if setting == "finite":
        cfg = out.parent / "finite.toml"
        cfg.write_text(FINITE)
        return main(["run", str(cfg), "--out", str(out), "--quiet", *extra]), out / "finite_pde.h5"
    name = "pde" if setting == "plane" else "pde_radial"
    return main(["run", str(CONFIGS / f"{name}.toml"), "--out", str(out), *_args(setting), *extra]), \
        out / f"{name}_pde.h5"


@pytest.mark.parametrize("setting", ["plane", "radial", "finite"])
def test_cli_matches_the_direct_solve(setting, tmp_path):
    code, path = _run(setting, tmp_path / "out")
    assert code == 0
    flow, init, times, dens = _direct(setting)
    states = [flow.init(init)]
    for t in times[1:]:
        states.append(flow.advance_to(states[-1], float(t)))
    with mf.load(path) as tr:
        assert tr.status == "completed" and tr.flows == () and tr.particles is None
        assert tr.config["dynamics"]["kind"] == "pde"
        np.testing.assert_array_equal(tr.times, times)
        np.testing.assert_array_equal(tr.steps, [s.step for s in states])
        fd = tr.fields["density"]
        assert fd is tr.field("density") and fd.shape == (len(dens),) + tuple(flow.grid.cells)
        np.testing.assert_array_equal(fd.times, times[dens])
        np.testing.assert_array_equal(fd.lower, flow.grid.lower)
        np.testing.assert_array_equal(fd.upper, flow.grid.upper)
        assert fd.cells == tuple(flow.grid.cells) and fd.axes == (("s",) if setting == "radial" else ("a", "w"))
        for i, k in enumerate(dens):  # bitwise the same densities
            np.testing.assert_array_equal(fd[i], states[k].density)
        for k, s in enumerate(states):  # and the same observables at every snapshot
            for key, value in flow.observe(s).items():
                assert tr.observables[key].value[k] == value, (key, k)
                assert tr.observables[key].step[k] == s.step
        assert set(tr.observables) == set(flow.observe(states[0]))
        assert tr.observables["outflow"].value[-1] == states[-1].outflow
        desc = tr._f["observables/risk"].attrs["description"]
        assert "risk" in desc
    assert verify(path) == []


def test_density_group_read_with_plain_h5py(tmp_path):
    code, path = _run("plane", tmp_path / "out")
    assert code == 0
    flow, init, times, dens = _direct("plane")
    with h5py.File(path, "r") as f:
        g = f["fields/density"]
        assert g["step"].dtype == np.int64 and g["time"].dtype == np.float64 and g["value"].dtype == np.float64
        assert g["value"].shape == (3, 40, 40) and g["step"].shape == g["time"].shape == (3,)
        np.testing.assert_array_equal(g["time"][:], [0.0, 0.25, 0.5])
        np.testing.assert_array_equal(g.attrs["lower"], flow.grid.lower)
        np.testing.assert_array_equal(g.attrs["upper"], flow.grid.upper)
        np.testing.assert_array_equal(g.attrs["cells"], [40, 40])
        assert [a.decode() for a in g.attrs["axes"]] == ["a", "w"] and g.attrs["setting"] == "plane"
        h = (g.attrs["upper"] - g.attrs["lower"]) / g.attrs["cells"]
        mass = g["value"][-1].sum() * h.prod()
        assert abs(mass + f["observables/outflow/value"][-1] - 1.0) < 1e-13
        assert f["parameters/status"][()].decode().rstrip("\x00 ") == "completed"
        assert "particles/neurons" not in f
    with mf.load(path) as tr:  # the lazy view slices like Particles
        fd = tr.field()
        full = fd.read()
        np.testing.assert_array_equal(fd[::-1], full[::-1])
        np.testing.assert_array_equal(fd[[2, 0]], full[[2, 0]])
        np.testing.assert_array_equal(fd[1, 7], full[1, 7])
        np.testing.assert_array_equal(fd[0:2, :, 3], full[0:2, :, 3])
        with pytest.raises(FileFormatError, match="no particles"):
            tr.last_state()
        with pytest.raises(FileFormatError, match="no field 'velocity'"):
            tr.field("velocity")
    text = info(path)
    assert "field density (plane): 3 snapshots" in text and "40 x 40 cells" in text and "risk:" in text
    # a damaged density chunk is found by verify and by `meanfield info`
    with h5py.File(path, "r") as f:
        chunk = f["fields/density/value"].id.get_chunk_info(1)
    with open(path, "r+b") as fh:
        fh.seek(chunk.byte_offset + chunk.size // 2)
        b = fh.read(1)
        fh.seek(chunk.byte_offset + chunk.size // 2)
        fh.write(bytes([b[0] ^ 0xFF]))
    assert any("/fields/density/value" in p for p in verify(path))
    assert main(["info", str(path)]) == 2


BAD = [
    ("plane", "pde.setting=cube", "pde.setting"),
    ("plane", "pde.cells=4", "pde.cells"),
    ("plane", "pde.cfl=1.5", "pde.cfl"),
    ("plane", "pde.order=3", "pde.order"),
    ("plane", "pde.tolerance=0.5", "pde.tolerance"),
    ("plane", "pde.a0=2.0", "pde.a0"),
    ("plane", "pde.density_every=0", "pde.density_every"),
    ("plane", "pde.colour=1", "pde.colour"),
    ("plane", "model.scaling=ntk", "model.scaling"),
    ("plane", "model.m=100", "model.m"),
    ("plane", "model.bias=true", "model.bias"),
    ("plane", "model.sigma_w=0.0", "model.sigma_w"),
    ("plane", "run.snapshot_every=5", "run.snapshot_every"),
    ("plane", "run.n_steps=10", "run.n_steps"),
    ("plane", "run.snapshot_dt=0.0", "run.snapshot_dt"),
    ("plane", "dynamics.dt=0.1", "dynamics.dt"),
    ("plane", "data.d=2", "data.d"),
    ("plane", "pde.extent=0.5", "pde.extent"),  # the initial law does not fit: refused at build time
    ("radial", "model.activation=erf", "data.activation"),
    ("radial", "model.activation=erf;data.activation=erf", "model.activation"),  # odd: averages to 0
    ("radial", "pde.cells=[64, 64]", "pde.cells"),
    ("radial", "data.teacher=[[1.0, -1.0]]", "data.teacher"),
    ("radial", "data.d=1", "data.d"),
    ("radial", "pde.quad_points=40", "pde.quad_points"),
]


@pytest.mark.parametrize("setting,override,key", BAD, ids=[b[1] for b in BAD])
def test_bad_pde_configs_exit_2_with_one_line_and_write_nothing(setting, override, key, tmp_path, capsys):
    out = tmp_path / "out"
    code, _ = _run(setting, out, [f"--set={o}" for o in override.split(";")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and key + " =" in err, err
    assert "Traceback" not in err and not out.exists()


def test_more_refusals(tmp_path, capsys):
    """Combinations that need another file than the two pde configurations."""
    cases = [
        (FINITE.replace("[data]", "[data]\nteacher = [[1.0, 1.0, 1.0, 1.0]]"),
         "data.teacher"),  # an inline teacher's rows are d + 1 = 2 or (with a bias) d + 2 = 3 long here
        (FINITE.replace('d = 1\n', 'd = 2\n'), "data.d"),  # the plane needs d = 1
        (FINITE.replace("[pde]", "[pde]\nsetting = \"radial\""), "data.kind"),  # radial needs Gaussian inputs
        (FINITE.replace('kind = "pde"', 'kind = "particle"').replace("[pde]\ncells = [36, 44]\norder = 1\ncfl = 0.7",
                                                                     "").replace("snapshot_dt = 0.15", ""),
         "model.m"),  # a particle run still needs m
        ((CONFIGS / "particle.toml").read_text() + "\n[pde]\ncells = 64\n", "pde"),
        ((CONFIGS / "population.toml").read_text().replace("[run]", "[run]\nsnapshot_dt = 0.1"), "run.snapshot_dt"),
    ]
    for i, (text, key) in enumerate(cases):
        cfg = tmp_path / f"c{i}.toml"
        cfg.write_text(text)
        out = tmp_path / f"o{i}"
        assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 2, key
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"meanfield: error: {key} ="), (key, err)
        assert not out.exists()


def test_outflow_stops_the_run_with_exit_2_naming_extent_and_tolerance(tmp_path, capsys):
    out = tmp_path / "out"
    code, path = _run("plane", out, ["--set=pde.extent=3.0", "--set=pde.tolerance=0.01",
                                     "--set=dynamics.temperature=0.5", "--set=run.t_end=2.0"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("meanfield: error: pde.extent =") and "pde.tolerance" in err
    with mf.load(path) as tr:  # the snapshots before the stop are kept
        assert tr.status == "interrupted" and len(tr.times) >= 1 and tr.times[-1] < 2.0
        assert tr.observables["outflow"].value[-1] <= 0.01


def _signal_at(monkeypatch, snapshot):
    """SIGTERM from inside an observer at snapshot number ``snapshot`` (of this process's run)."""
    from meanfield import run as R

    real = R.pde_observers
    seen = []

    def patched(flow):
        def fire(state):
            seen.append(state.step)
            if len(seen) == snapshot + 1:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)
            return {}

        return [Observer("probe", "sends SIGTERM", fire)] + real(flow)

    monkeypatch.setattr(R, "pde_observers", patched)


@pytest.mark.parametrize("snapshot,densities", [(0, 1), (3, 2)])
def test_interrupt_then_resume_reaches_the_uninterrupted_density(snapshot, densities, tmp_path, monkeypatch, capsys):
    """SIGTERM inside a deferred() block during snapshot k: the snapshot completes, the run stops with 130, and
    --resume continues from the last density snapshot (density_every = 2: snapshot 2 when k = 3) to the same
    bits as an uninterrupted run."""
    out = tmp_path / "out"
    _signal_at(monkeypatch, snapshot)
    code, path = _run("plane", out)
    assert code == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and err.count("\n") == 1
    with mf.load(path) as tr:
        assert tr.status == "interrupted"
        assert len(tr.times) == snapshot + 1 and len(tr.field("density")) == densities
    monkeypatch.undo()
    code, _ = _run("plane", out, ["--resume"])
    assert code == 0
    code, ref = _run("plane", tmp_path / "ref")
    assert code == 0
    with mf.load(path) as a, mf.load(ref) as b:
        assert a.status == "completed"
        np.testing.assert_array_equal(a.field("density").read(), b.field("density").read())
        np.testing.assert_array_equal(a.field("density").steps, b.field("density").steps)
        assert set(a.observables) == set(b.observables)
        for key in a.observables:
            np.testing.assert_array_equal(a.observables[key].value, b.observables[key].value)
            np.testing.assert_array_equal(a.observables[key].step, b.observables[key].step)
    # a completed file is skipped by --resume
    before = path.read_bytes()
    assert _run("plane", out, ["--resume"])[0] == 0
    assert path.read_bytes() == before
