"""Configuration files: defaults, overrides, and a clear error for every bad key or value."""

import pytest

from meanfield import config
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
"""


def write(tmp_path, text, name="c.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_defaults_and_objects(tmp_path):
    cfg = config.load(write(tmp_path, BASE))
    assert cfg.run == {"t_end": 10.0, "snapshot_every": 10, "scalings": ["mean_field"]}
    data = cfg.build_data()
    model = cfg.build_model(data.X.shape[1], "ntk")
    assert (model.d, model.m, model.p, model.scale.alpha, model.scale.beta) == (3, 10, 4, 0.5, 0.0)
    assert cfg.build_dynamics().dt == 0.1


def test_override_parses_toml_values(tmp_path):
    cfg = config.load(write(tmp_path, BASE), ["model.m=12", "dynamics.integrator=rk4", "run.scalings=['ntk']",
                                               "dynamics.layer_lr=[1, 2, 3]"])
    assert cfg.model["m"] == 12 and cfg.dynamics["integrator"] == "rk4" and cfg.run["scalings"] == ["ntk"]
    assert cfg.build_dynamics().layer_lr == (1.0, 2.0, 3.0)


@pytest.mark.parametrize("override, key", [
    ("model.mm=3", "model.mm"),
    ("model.m=0", "model.m"),
    ("model.m=-4", "model.m"),
    ("model.activation=swish", "activation"),
    ("model.scaling=weird", "scaling"),
    ("dynamics.dt=-0.1", "dynamics.dt"),
    ("dynamics.integrator=leapfrog", "dynamics.integrator"),
    ("run.scalings=['mean_field', 'nope']", "run.scalings"),
    ("data.kind=parquet", "data.kind"),
    ("data.colour=3", "data.colour"),
    ("output.format=zarr", "output.format"),
])
def test_bad_values_name_the_key(tmp_path, override, key):
    with pytest.raises(ConfigError) as err:
        config.load(write(tmp_path, BASE), [override])
    assert key in str(err.value) and "\n" not in str(err.value)


def test_bad_files(tmp_path):
    with pytest.raises(FileFormatError, match="missing.toml"):
        config.load(tmp_path / "missing.toml")
    with pytest.raises(FileFormatError, match="not valid TOML"):
        config.load(write(tmp_path, "[model\nm = 3"))
    with pytest.raises(ConfigError, match="section.key=value"):
        config.parse_override("m=3")
