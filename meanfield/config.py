"""Run configuration: TOML files in, validated objects out.

A configuration has five tables; every key is optional except where said. Unknown tables or keys are
errors that name the key and list the allowed ones (docs/config.md shows every key with its default)::

    [data]      kind = "teacher_student" | "digits" | "npz" | "csv", then the arguments of
                meanfield.data.teacher_student / load_digits / load_npz / load_csv
    [model]     the fields of meanfield.Model (d is taken from the data), and seed (initial particles)
    [dynamics]  the fields of meanfield.Dynamics
    [run]       t_end or n_steps, snapshot_every, scalings (list of presets run from the same initial
                particles; default: [model.scaling])
    [output]    dir, compression, particles_dtype, particle_subset, figure

``--set section.key=value`` overrides (the value is parsed as TOML) are applied before validation.
"""

from __future__ import annotations

import copy
import inspect
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path


from . import data as _data
from .errors import ConfigError, FileFormatError
from .flow import Dynamics
from .model import Model
from .scaling import PRESETS

__all__ = ["RunConfig", "load", "parse_override", "DATA_KINDS"]

DATA_KINDS = {
    "teacher_student": _data.teacher_student,
    "digits": _data.load_digits,
    "npz": _data.load_npz,
    "csv": _data.load_csv,
}
_MODEL_KEYS = [f.name for f in fields(Model) if f.init and f.name != "d"] + ["seed"]
_DYNAMICS_KEYS = [f.name for f in fields(Dynamics)]
_RUN_KEYS = ["t_end", "n_steps", "snapshot_every", "scalings"]
_OUTPUT_KEYS = ["dir", "compression", "particles_dtype", "particle_subset", "figure"]
_TABLES = {"data": None, "model": _MODEL_KEYS, "dynamics": _DYNAMICS_KEYS, "run": _RUN_KEYS, "output": _OUTPUT_KEYS}


def _check_keys(table: str, given: dict, allowed):
    for key in given:
        if key not in allowed:
            raise ConfigError(f"{table}.{key}", given[key], "one of the keys " + ", ".join(allowed))


def _data_keys(kind):
    fn = DATA_KINDS[kind]
    return ["kind"] + [n for n, p in inspect.signature(fn).parameters.items() if p.kind != p.VAR_KEYWORD]


@dataclass(frozen=True)
class RunConfig:
    """A validated run configuration (the parsed TOML tables, defaults filled in).

    Build objects with :meth:`build_data`, :meth:`build_model`, :meth:`build_dynamics`.
    """

    data: dict
    model: dict
    dynamics: dict
    run: dict
    output: dict
    source: str = "<dict>"

    @classmethod
    def from_dict(cls, tables: dict, source: str = "<dict>") -> "RunConfig":
        tables = copy.deepcopy(tables)
        _check_keys("config", tables, list(_TABLES))
        for name, allowed in _TABLES.items():
            value = tables.setdefault(name, {})
            if not isinstance(value, dict):
                raise ConfigError(name, value, f"a table [{name}]")
            if allowed is not None:
                _check_keys(name, value, allowed)
        data = tables["data"]
        data.setdefault("kind", "teacher_student")
        if data["kind"] not in DATA_KINDS:
            raise ConfigError("data.kind", data["kind"], "one of " + ", ".join(DATA_KINDS))
        _check_keys("data", data, _data_keys(data["kind"]))
        run = tables["run"]
        if "t_end" not in run and "n_steps" not in run:
            run["t_end"] = 10.0
        if "t_end" in run and "n_steps" in run:
            raise ConfigError("run.n_steps", run["n_steps"], "either run.t_end or run.n_steps, not both")
        run.setdefault("snapshot_every", 10)
        scalings = run.setdefault("scalings", [tables["model"].get("scaling", "mean_field")])
        if isinstance(scalings, str):
            scalings = run["scalings"] = [scalings]
        if not isinstance(scalings, list) or not scalings or any(s not in PRESETS for s in scalings):
            raise ConfigError("run.scalings", scalings, "a non-empty list of presets from " + ", ".join(PRESETS))
        if len(set(scalings)) != len(scalings):
            raise ConfigError("run.scalings", scalings, "each preset at most once")
        out = tables["output"]
        out.setdefault("dir", "results")
        out.setdefault("compression", "gzip")
        out.setdefault("particles_dtype", "float64")
        out.setdefault("particle_subset", None)
        out.setdefault("figure", True)
        cfg = cls(data, tables["model"], tables["dynamics"], run, out, source)
        # Build once so every value error surfaces now, before any output is written.
        ds = cfg.build_data()
        for s in scalings:
            cfg.build_model(ds.X.shape[1], s)
        cfg.build_dynamics()
        return cfg

    def to_dict(self) -> dict:
        """The tables as plain data (JSON/TOML-serialisable)."""
        return {"data": self.data, "model": self.model, "dynamics": self.dynamics, "run": self.run,
                "output": self.output}

    def build_data(self):
        kwargs = {k: v for k, v in self.data.items() if k != "kind"}
        return DATA_KINDS[self.data["kind"]](**kwargs)

    def model_seed(self) -> int:
        seed = self.model.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError("model.seed", seed, "a non-negative integer")
        return seed

    def build_model(self, d: int, scaling: str | None = None) -> Model:
        kwargs = {k: v for k, v in self.model.items() if k != "seed"}
        if scaling is not None:
            kwargs["scaling"] = scaling
            if scaling != "lazy":
                kwargs.pop("lazy_scale", None)
        self.model_seed()
        return Model(d=d, **kwargs)

    def build_dynamics(self) -> Dynamics:
        kwargs = dict(self.dynamics)
        if "layer_lr" in kwargs and isinstance(kwargs["layer_lr"], list):
            kwargs["layer_lr"] = tuple(kwargs["layer_lr"])
        return Dynamics(**kwargs)


def parse_override(text: str):
    """Parse ``section.key=value`` (value in TOML syntax; bare words are strings) into (section, key, value)."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError("--set", text, "section.key=value, e.g. model.m=1000 or dynamics.integrator=rk4")
    lhs, rhs = text.split("=", 1)
    section, key = lhs.strip().split(".", 1)
    try:
        value = tomllib.loads(f"v = {rhs.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = rhs.strip()
    return section, key, value


def load(path, overrides=()) -> RunConfig:
    """Read and validate a TOML configuration file, applying ``section.key=value`` overrides.

    Raises
    ------
    FileFormatError
        When the file is missing or not valid TOML.
    ConfigError
        When a key or value is not allowed.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise FileFormatError(path, f"cannot read the configuration ({exc.strerror or exc})") from None
    try:
        tables = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FileFormatError(path, f"not valid TOML ({exc})") from None
    for item in overrides:
        section, key, value = parse_override(item)
        tables.setdefault(section, {})
        if not isinstance(tables[section], dict):
            raise ConfigError(section, tables[section], f"a table [{section}]")
        tables[section][key] = value
    return RunConfig.from_dict(tables, source=str(path))
