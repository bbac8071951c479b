"""Configurations: defaults, overrides, and a one-line refusal, before anything is created, for every bad key,
value, combination or file (tried through the command line, as a user meets them)."""

import tomllib

import numpy as np
import pytest

from meanfield import config
from meanfield.cli import main
from meanfield.errors import ConfigError, FileFormatError

BASE = """
[data]
kind = "teacher_student"
d = 3
n_train = 20
k = 2
[model]
m = 10
[dynamics]
dt = 0.1
[run]
n_steps = 4
snapshot_every = 2
[output]
figure = false
"""


def write(tmp_path, text, name="c.toml"):
    p = tmp_path / name
    p.write_text(text) if isinstance(text, str) else p.write_bytes(text)
    return p


def test_defaults_and_objects(tmp_path):
    cfg = config.load(write(tmp_path, BASE.replace("n_steps = 4", "t_end = 1.0")))
    assert cfg.run == {"t_end": 1.0, "snapshot_every": 2, "scalings": ["mean_field"]}
    assert cfg.total_steps == 10 and cfg.dynamics["kind"] == "particle"
    assert cfg.observers == {"record": ["risks", "motion", "w2"], "kernel_points": 128, "w2_method": "auto", "seed": 0}
    assert cfg.model_kwargs("ntk")["scaling"] == "ntk" and cfg.dynamics_kwargs()["dt"] == 0.1


def test_override_parses_toml_values(tmp_path):
    cfg = config.load(write(tmp_path, BASE), ["model.m=12", "dynamics.integrator=rk4", "run.scalings=['ntk']",
                                               "dynamics.layer_lr=[1, 2, 3]"])
    assert cfg.model["m"] == 12 and cfg.dynamics["integrator"] == "rk4" and cfg.run["scalings"] == ["ntk"]
    assert cfg.dynamics_kwargs()["layer_lr"] == (1.0, 2.0, 3.0)


def test_explicit_scaling_takes_its_exponents(tmp_path):
    cfg = config.load(write(tmp_path, BASE), ["model.alpha=0.75", "model.beta=0.5", "model.c=2.0",
                                               "run.scalings=['explicit', 'ntk']"])
    assert cfg.model_kwargs("explicit") | {} == {**cfg.model_kwargs("explicit"), "alpha": 0.75, "beta": 0.5, "c": 2.0}
    assert "alpha" not in cfg.model_kwargs("ntk")


# Each case: (change, key named in the message). A change is a list of --set overrides, or ("text", TOML) for the
# whole file, or ("bytes", raw). Cases marked "file" are refused as a FileFormatError naming the file.
NPZ = "tests_bad.npz"
NODATA = '[model]\nm = 10\n[dynamics]\ndt = 0.1\n{dyn}[run]\nn_steps = 4\n[output]\nfigure = false\n'
FIN = NODATA.format(dyn="")
POP = NODATA.format(dyn='kind = "population"\n')
BAD = [
    # missing, empty, unreadable
    (("text", ""), "data.d = (missing)"),
    (("text", "[model]\n"), "data.d = (missing)"),
    (("text", BASE.replace("m = 10", "")), "model.m"),
    (("bytes", b"[model]\nm = 1\xff\xfe0\n"), "file"),
    (("text", "[model\nm = 3"), "file"),
    (("text", BASE + "\n[model]\nm = 4\n"), "file"),
    (("text", BASE.replace("[data]", "data = 3\n[datum]")), "data"),
    # unknown tables and keys
    (["nonsense"], "--set"),
    (["model.mm=3"], "model.mm"),
    (["data.colour=3"], "data.colour"),
    (["output.format=zarr"], "output.format"),
    (["solver.tol=1"], "solver"),
    (["run.steps=4"], "run.steps"),
    # model
    (["model.m=0"], "model.m"),
    (["model.m=-4"], "model.m"),
    (["model.m=12.5"], "model.m"),
    (["model.m='many'"], "model.m"),
    (["model.m=true"], "model.m"),
    (["model.m=1000000000000"], "model.m"),
    (["model.activation=swish"], "model.activation"),
    (["model.scaling=weird"], "model.scaling"),
    (["model.symmetric=1"], "model.symmetric"),
    (["model.symmetric=true", "model.m=11"], "model.m"),
    (["model.sigma_w=-1"], "model.sigma_w"),
    (["model.sigma_a=nan"], "model.sigma_a"),
    (["model.dtype=float16"], "model.dtype"),
    (["model.seed=-1"], "model.seed"),
    (["model.lazy_scale=2"], "model.lazy_scale"),
    (["model.lazy_scale=0", "model.scaling=lazy"], "model.lazy_scale"),
    (["model.alpha=0.5"], "model.alpha"),
    (["model.scaling=explicit"], "alpha, beta and c"),
    (["model.scaling=explicit", "model.alpha=1", "model.beta=1", "model.c=0"], "model.c"),
    (["model.scaling=explicit", "model.alpha=inf", "model.beta=1", "model.c=1"], "model.alpha"),
    # dynamics
    (["dynamics.dt=0"], "dynamics.dt"),
    (["dynamics.dt=-0.1"], "dynamics.dt"),
    (["dynamics.dt=inf"], "dynamics.dt"),
    (["dynamics.lr='fast'"], "dynamics.lr"),
    (["dynamics.integrator=leapfrog"], "dynamics.integrator"),
    (["dynamics.temperature=0.1"], "dynamics.integrator"),
    (["dynamics.temperature=-1", "dynamics.integrator=euler_maruyama"], "dynamics.temperature"),
    (["dynamics.weight_decay=nan"], "dynamics.weight_decay"),
    (["dynamics.layer_lr=[1, 2]"], "dynamics.layer_lr"),
    (["dynamics.layer_lr=[1, 2, -3]"], "dynamics.layer_lr"),
    (["dynamics.integrator=sgd"], "dynamics.batch_size"),
    (["dynamics.batch_size=4"], "dynamics.batch_size"),
    (["dynamics.integrator=sgd", "dynamics.batch_size=50"], "dynamics.batch_size"),
    (["dynamics.seed=-2"], "dynamics.seed"),
    (["dynamics.kind=pde"], "dynamics.kind"),
    (["dynamics.kind=population"], "dynamics.kind"),
    # run
    (["run.t_end=nan", "run.n_steps=1"], "run.t_end"),
    (("text", BASE.replace("n_steps = 4", "t_end = nan")), "run.t_end"),
    (("text", BASE.replace("n_steps = 4", "t_end = inf")), "run.t_end"),
    (("text", BASE.replace("n_steps = 4", "t_end = 'long'")), "run.t_end"),
    (("text", BASE.replace("n_steps = 4", "t_end = -1")), "run.t_end"),
    (("text", BASE.replace("n_steps = 4", "t_end = 0.01")), "run.t_end"),
    (["run.t_end=1.0"], "run.n_steps"),
    (["run.n_steps=12.5"], "run.n_steps"),
    (["run.n_steps=-3"], "run.n_steps"),
    (["run.snapshot_every=often"], "run.snapshot_every"),
    (["run.snapshot_every=0"], "run.snapshot_every"),
    (["run.scalings=['rich']"], "run.scalings"),
    (["run.scalings=[]"], "run.scalings"),
    (["run.scalings=['ntk', 'ntk']"], "run.scalings"),
    (["run.scalings='ntk'"], "run.scalings"),
    # observers
    (["observers.record=['risks', 'energy']"], "observers.record"),
    (["observers.kernel_points=1"], "observers.kernel_points"),
    (["observers.w2_method=emd"], "observers.w2_method"),
    # output
    (["output.dir=5"], "output.dir"),
    (["output.dir=''"], "output.dir"),
    (["output.figure=yes"], "output.figure"),
    (["output.compression=zstd"], "output.compression"),
    (["output.particles_dtype=float16"], "output.particles_dtype"),
    (["output.particle_subset=0"], "output.particle_subset"),
    (["output.particle_subset=[1, 1]"], "output.particle_subset"),
    (["output.particle_subset=[0, 10]"], "output.particle_subset"),
    # data
    (["data.kind=parquet"], "data.kind"),
    (("text", FIN + '[data]\nkind = "npz"\n'), "data.path"),
    (("text", FIN + '[data]\nkind = "csv"\npath = "missing.csv"\n'), "data.path"),
    (("text", FIN + '[data]\nkind = "npz"\npath = "."\n'), "data.path"),
    (("text", FIN + f'[data]\nkind = "npz"\npath = "{NPZ}"\nx_key = "inputs"\n'), "data.x_key"),
    (("text", FIN + f'[data]\nkind = "npz"\npath = "{NPZ}"\ny_key = "X"\n'), NPZ),
    (("text", FIN + '[data]\nkind = "npz"\npath = "not_npz.npz"\n'), "not_npz.npz"),
    (("text", FIN + '[data]\nkind = "csv"\npath = "empty.csv"\n'), "empty.csv"),
    (("text", FIN + '[data]\nkind = "digits"\ntarget = [3, 3]\n'), "data.target"),
    (("text", FIN + '[data]\nkind = "digits"\ntarget = "odd"\n'), "data.target"),
    (["data.d=0"], "data.d"),
    (["data.n_train=2.5"], "data.n_train"),
    (["data.noise=-0.1"], "data.noise"),
    (["data.activation=swish"], "data.activation"),
    (["data.input=cube"], "data.input"),
    (["data.teacher=[[1.0, 2.0]]"], "data.teacher"),
    (["data.teacher=[[1.0, 2.0, 3.0], [1.0]]"], "data.teacher"),
    (["data.teacher=[[1.0, nan, 3.0]]"], "data.teacher"),
    (["data.seed='one'"], "data.seed"),
    (("text", FIN + '[data]\nkind = "gaussian_teacher"\nd = 3\n'), "dynamics.kind"),
    (("text", POP + '[data]\nkind = "gaussian_teacher"\n'), "data.d"),
    (("text", POP + '[data]\nkind = "gaussian_teacher"\nd = 2\nn_train = 5\n'), "data.n_train"),
    (("text", POP + '[data]\nkind = "gaussian_teacher"\nd = 2\nactivation = "erf"\n'),
     "data.activation"),
    (("text", POP + '[data]\nkind = "gaussian_teacher"\nd = 2\nteacher_file = "not_npz.npz"\n'), "not_npz.npz"),
]


def _prepare(tmp_path, change):
    (tmp_path / "not_npz.npz").write_text("hello")
    (tmp_path / "empty.csv").write_text("")
    np.savez(tmp_path / NPZ, X=np.zeros((5, 3)), y=np.zeros(5))
    if isinstance(change, tuple):
        return write(tmp_path, change[1] if change[0] == "text" else change[1]), []
    return write(tmp_path, BASE), list(change)


@pytest.mark.parametrize("change, needle", BAD, ids=[f"{i}:{n}" for i, (_, n) in enumerate(BAD)])
def test_bad_config_is_one_line_exit_2_and_creates_nothing(tmp_path, capsys, monkeypatch, change, needle):
    monkeypatch.chdir(tmp_path)
    path, sets = _prepare(tmp_path, change)
    out = tmp_path / "out" / "deeper"
    args = ["run", str(path), "--out", str(out), "--quiet"] + [a for s in sets for a in ("--set", s)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("meanfield: error: ") and "Traceback" not in err
    assert (str(path.name) if needle == "file" else needle) in err
    assert not (tmp_path / "out").exists()


def test_at_least_sixty_bad_configs():
    assert len(BAD) >= 60


def test_the_api_raises_the_same_errors(tmp_path):
    with pytest.raises(FileFormatError, match="missing.toml"):
        config.load(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="section.key=value"):
        config.parse_override("m=3")
    tables = tomllib.loads(BASE)
    tables["run"]["n_steps"] = 12.5
    with pytest.raises(ConfigError, match="run.n_steps = 12.5"):
        config.from_dict(tables)


def test_a_teacher_file_sets_the_input_dimension(tmp_path):
    np.savez(tmp_path / "t.npz", teacher=np.array([[1.0, 0.5, -0.5, 1.0], [-1.0, 0.0, 1.0, 0.0]]))
    cfg = config.from_dict({"data": {"kind": "gaussian_teacher", "teacher_file": str(tmp_path / "t.npz")},
                            "model": {"m": 4}, "dynamics": {"kind": "population"}})
    from meanfield.run import build

    plan = build(cfg)
    assert plan.theta0.shape == (4, 4)  # d = 3 from the teacher's 4 columns (a, w1, w2, w3)
    np.testing.assert_array_equal(plan.problem, np.load(tmp_path / "t.npz")["teacher"])
    with pytest.raises(ConfigError, match="data.d"):
        config.from_dict({"data": {"kind": "gaussian_teacher", "teacher_file": str(tmp_path / "t.npz"), "d": 2},
                          "model": {"m": 4}, "dynamics": {"kind": "population"}})


def test_inline_teacher_rows_label_the_data(tmp_path):
    """data.teacher (teacher_student) gives the same data set as the Python API with that teacher."""
    import meanfield as mf
    from meanfield.run import build

    rows = [[1.0, 0.5, -1.0, 0.25], [-0.5, 0.0, 1.0, 2.0]]
    cfg = config.from_dict({"data": {"d": 3, "n_train": 7, "teacher": rows, "seed": 4}, "model": {"m": 4}})
    ds = build(cfg).problem
    ref = mf.teacher_student(d=3, n_train=7, teacher=rows, seed=4)
    np.testing.assert_array_equal(ds.X, ref.X)
    np.testing.assert_array_equal(ds.y, ref.y)
    a, w = np.array(rows)[:, 0], np.array(rows)[:, 1:]
    np.testing.assert_allclose(ds.y, np.maximum(ds.X @ w.T / np.sqrt(3), 0) @ a, rtol=1e-14)  # relu teacher
    with pytest.raises(ConfigError, match="data.k"):
        config.from_dict({"data": {"d": 3, "n_train": 7, "teacher": rows, "k": 3}, "model": {"m": 4}})
