"""Run configuration: a TOML file in, a validated :class:`RunConfig` out, before anything is built or written.

A configuration has six tables (seven for the PDE); docs/config.md shows every key with its default and what is
allowed::

    [data]       kind = "teacher_student" | "digits" | "npz" | "csv"  (finite data), or
                 kind = "gaussian_teacher" (Gaussian inputs and a teacher: population, online and pde flows)
    [model]      the fields of meanfield.Model (d is taken from the data) and seed (initial particles)
    [dynamics]   kind = "particle" | "linearized" | "population" | "online" | "pde", then the fields of
                 meanfield.Dynamics
    [run]        t_end or n_steps, snapshot_every (pde: t_end, snapshot_dt), scalings
    [observers]  record (names of meanfield.observers.OBSERVERS), kernel_points, w2_method, seed
    [output]     dir, compression, particles_dtype, particle_subset, figure
    [pde]        dynamics.kind = "pde" only: setting, cells, extent, tolerance, ... (meanfield.pde)

:func:`load` checks every key: its type, range and finiteness, the combinations of keys, that the files it
names exist and have the right format, and that the arrays of the run fit in memory. The first problem is
raised as a :class:`~meanfield.errors.ConfigError` naming the key, the value and what is allowed (or a
:class:`~meanfield.errors.FileFormatError` naming the file). Nothing is built and nothing is written here.

>>> cfg = from_dict({"data": {"d": 3, "n_train": 20}, "model": {"m": 8}, "run": {"t_end": 1.0}})
>>> cfg.total_steps, cfg.dynamics["kind"], cfg.run["scalings"]
(100, 'particle', ['mean_field'])
"""

from __future__ import annotations

import copy
import os
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ConfigError, FileFormatError
from .validate import DTYPES, check_bool, check_choice, check_int, check_number, check_str

__all__ = ["RunConfig", "load", "read_tables", "from_dict", "parse_override", "DATA_KINDS", "DYNAMICS_KINDS"]

#: Data kinds with a finite training set, and the one with Gaussian inputs and a teacher.
FINITE_KINDS = ("teacher_student", "digits", "npz", "csv")
DATA_KINDS = FINITE_KINDS + ("gaussian_teacher",)
#: Dynamics kinds: the data kind each needs.
DYNAMICS_KINDS = {"particle": FINITE_KINDS, "linearized": FINITE_KINDS, "population": ("gaussian_teacher",),
                  "online": ("gaussian_teacher",), "pde": DATA_KINDS}

_ACTIVATIONS = ("identity", "relu", "erf", "tanh", "sigmoid", "softplus", "quadratic")
_PRESETS = ("mean_field", "ntk", "lazy", "explicit")
_INTEGRATORS = ("euler", "heun", "rk4", "euler_maruyama", "sgd")
_OBSERVERS = ("risks", "motion", "w2", "kernel")
_W2_METHODS = ("auto", "exact", "subsampled", "sinkhorn", "sinkhorn_divergence", "sliced", "none")
_COMPRESSIONS = ("gzip", "lzf", "none")
_REQUIRED = object()


class _Missing:
    def __repr__(self):
        return "(missing)"


_MISSING = _Missing()


# --- one rule per key: rule(key, value) -> value ----------------------------------------------------------------

def _int(low=None, high=None):
    return lambda key, v: check_int(key, v, low=low, high=high)


def _num(low=None, low_open=False):
    return lambda key, v: check_number(key, v, low=low, low_open=low_open)


def _choice(choices):
    return lambda key, v: check_choice(key, v, choices)


def _dtype(key, v):
    return check_choice(key, v, tuple(DTYPES))


def _names(choices):
    def rule(key, v):
        if not isinstance(v, list) or not v or len(set(map(str, v))) != len(v):
            raise ConfigError(key, v, "a non-empty list of distinct names from " + ", ".join(choices))
        for item in v:
            check_choice(key, item, choices)
        return list(v)

    return rule


def _layer_lr(key, v):
    if not isinstance(v, list) or len(v) != 3:
        raise ConfigError(key, v, "three numbers [eta_a, eta_w, eta_b] >= 0")
    return [check_number(key, x, low=0, allowed="three finite numbers [eta_a, eta_w, eta_b] >= 0 (0 freezes a layer)")
            for x in v]


def _subset(key, v):
    if isinstance(v, list):
        if not v:
            raise ConfigError(key, v, "a number of particles >= 1 or a non-empty list of particle indices")
        for i in v:
            check_int(key, i, low=0, allowed="particle indices >= 0")
        if len(set(v)) != len(v):
            raise ConfigError(key, v, "distinct particle indices")
        return list(v)
    return check_int(key, v, low=1, allowed="a number of particles >= 1 or a list of particle indices")


def _target(key, v):
    if isinstance(v, list):
        if len(v) != 2 or v[0] == v[1]:
            raise ConfigError(key, v, "'parity', 'binary01', 'digit' or a pair [i, j] of distinct digits")
        for x in v:
            check_int(key, x, low=0, high=9, allowed="a pair [i, j] of distinct digits 0..9")
        return list(v)
    return check_choice(key, v, ("parity", "binary01", "digit"))


def _column(key, v):
    if isinstance(v, str):
        return check_str(key, v)
    return check_int(key, v, allowed="a column index (negative counts from the end) or a column name")


def _header(key, v):
    if v == "infer":
        return v
    if not isinstance(v, bool):
        raise ConfigError(key, v, "true, false or 'infer'")
    return v


def _path(key, v):
    p = Path(check_str(key, v, allowed="the path of an existing file"))
    if not p.is_file():
        raise ConfigError(key, v, "the path of an existing file" + (" (this is a folder)" if p.is_dir() else ""))
    if not os.access(p, os.R_OK):
        raise ConfigError(key, v, "a file that can be read")
    return str(p)


def _str(key, v):
    return check_str(key, v)


def _optional_str(key, v):
    return check_str(key, v, allowed="a non-empty string (leave the key out for none)")


def _teacher_rows(key, v):
    allowed = "inline rows [[a*, w*], ...] (plane) or [[a*, s*], ...] (radial) of two finite numbers each"
    if not isinstance(v, list) or not v or not all(isinstance(r, list) and len(r) == 2 for r in v):
        raise ConfigError(key, v, allowed)
    return [[check_number(key, x, allowed=allowed) for x in r] for r in v]


def _teacher_matrix(key, v):
    allowed = "inline teacher rows [[a*, w*_1, ..., w*_d(, b*)], ...] of finite numbers, all of one length"
    if not isinstance(v, list) or not v or not all(isinstance(r, list) and len(r) >= 2 for r in v) \
            or len({len(r) for r in v}) != 1:
        raise ConfigError(key, v, allowed)
    return [[check_number(key, x, allowed=allowed) for x in r] for r in v]


def _cells(key, v):
    if isinstance(v, list):
        if len(v) != 2:
            raise ConfigError(key, v, "an integer >= 8 or two of them [na, nw] (plane)")
        return [check_int(key, x, low=8, allowed="integers >= 8") for x in v]
    return check_int(key, v, low=8, allowed="an integer >= 8 (or [na, nw] in the plane)")


def _extent(key, v):
    allowed = "a half-width > 0 or two [E_a, E_w] (plane), or s_max > 0 (radial)"
    if isinstance(v, list):
        if len(v) != 2:
            raise ConfigError(key, v, allowed)
        return [check_number(key, x, low=0, low_open=True, allowed=allowed) for x in v]
    return check_number(key, v, low=0, low_open=True, allowed=allowed)


def _nonzero(key, v):
    x = check_number(key, v, allowed="a finite non-zero number")
    if x == 0:
        raise ConfigError(key, v, "a finite non-zero number")
    return x


_COMMON = {"n_test": (_int(0), 0), "seed": (_int(0), 0), "dtype": (_dtype, "float64")}
_DATA = {
    "teacher_student": {"d": (_int(1), _REQUIRED), "n_train": (_int(1), _REQUIRED), "k": (_int(1), None),
                        "teacher": (_teacher_matrix, None),
                        "activation": (_choice(_ACTIVATIONS), "relu"), "input": (_choice(("gaussian", "sphere")),
                                                                                 "gaussian"),
                        "noise": (_num(0), 0.0), "noisy_test": (check_bool, False), "bias": (check_bool, False),
                        "name": (_str, None), **_COMMON},
    "digits": {"target": (_target, "parity"), "preprocessing": (_choice(("standardize", "sphere", "unit", "raw")),
                                                                 "standardize"), **_COMMON},
    "npz": {"path": (_path, _REQUIRED), "x_key": (_str, "X"), "y_key": (_str, "y"), "x_test_key": (_optional_str, None),
            "y_test_key": (_optional_str, None), "name": (_str, None), **_COMMON},
    "csv": {"path": (_path, _REQUIRED), "target_column": (_column, -1), "header": (_header, "infer"),
            "delimiter": (_str, ","), "name": (_str, None), **_COMMON},
    "gaussian_teacher": {"d": (_int(1), None), "k": (_int(1), 1), "activation": (_choice(_ACTIVATIONS), None),
                         "bias": (check_bool, False), "seed": (_int(0), 0), "teacher_file": (_path, None),
                         "teacher_key": (_str, "teacher"), "teacher": (_teacher_rows, None)},
}
_TABLES = {
    "model": {"m": (_int(1), _REQUIRED), "activation": (_choice(_ACTIVATIONS), "relu"),
              "scaling": (_choice(_PRESETS), "mean_field"), "lazy_scale": (_num(0, True), None),
              "alpha": (_num(), None), "beta": (_num(), None), "c": (_num(0, True), None),
              "bias": (check_bool, False), "sigma_a": (_num(0), 1.0), "sigma_w": (_num(0), 1.0),
              "sigma_b": (_num(0), 0.0), "symmetric": (check_bool, False), "dtype": (_dtype, "float64"),
              "seed": (_int(0), 0)},
    "dynamics": {"kind": (_choice(tuple(DYNAMICS_KINDS)), "particle"), "lr": (_num(0, True), 1.0),
                 "dt": (_num(0, True), 0.01), "integrator": (_choice(_INTEGRATORS), "euler"),
                 "temperature": (_num(0), 0.0), "weight_decay": (_num(0), 0.0), "layer_lr": (_layer_lr, [1.0, 1.0, 1.0]),
                 "batch_size": (_int(1), None), "seed": (_int(0, 2**63 - 1), 0)},
    "run": {"t_end": (_num(0), None), "n_steps": (_int(0), None), "snapshot_every": (_int(1), 10),
            "snapshot_dt": (_num(0, True), None), "scalings": (_names(_PRESETS), None)},
    "observers": {"record": (_names(_OBSERVERS), ["risks", "motion", "w2"]), "kernel_points": (_int(2), 128),
                  "w2_method": (_choice(_W2_METHODS), "auto"), "seed": (_int(0), 0)},
    "output": {"dir": (_str, "results"), "compression": (_choice(_COMPRESSIONS), "gzip"),
               "particles_dtype": (_dtype, "float64"), "particle_subset": (_subset, None),
               "figure": (check_bool, True)},
}
#: The [pde] table (dynamics.kind = "pde"); defaults are filled for the keys of the chosen setting only.
_PDE = {"setting": (_choice(("plane", "radial")), "plane"), "cells": (_cells, 128), "extent": (_extent, None),
        "tolerance": (lambda k, v: check_number(k, v, low=0, high=0.1, low_open=True), 1e-6),
        "margin": (_num(1), 1.5), "order": (_int(1, 2), 2),
        "cfl": (lambda k, v: check_number(k, v, low=0, high=1, low_open=True), 0.9),
        "dt_max": (_num(0, True), None), "quad_points": (_int(4, 300), 300), "a0": (_nonzero, 1.0),
        "radial_points": (_int(8, 400), 64), "angular_points": (_int(4, 400), 48), "density_every": (_int(1), 1)}
#: Keys of [pde] that belong to one setting only (plane population: quad_points; radial: a0 and the rules).
_PDE_ONLY = {"quad_points": "plane", "a0": "radial", "radial_points": "radial", "angular_points": "radial"}
#: Keys of other tables that a PDE run does not use: refused when given, their defaults not filled.
_PDE_UNUSED = {"model": ("m", "symmetric", "sigma_b", "dtype", "seed", "lazy_scale", "alpha", "beta", "c"),
               "dynamics": ("dt", "integrator", "batch_size", "seed"), "run": ("n_steps", "snapshot_every"),
               "output": ("particles_dtype", "particle_subset"),
               "observers": ("record", "kernel_points", "w2_method", "seed")}
#: Odd activations: their average over directions is 0 (no radial setting).
_ODD = ("erf", "tanh", "identity")
TABLES = ("data",) + tuple(_TABLES) + ("pde",)


def _check_table(name: str, given: dict, rules: dict) -> dict:
    """Apply one rule per key (unknown keys refused), fill defaults, leave out keys whose default is None."""
    for key in given:
        if key not in rules:
            raise ConfigError(f"{name}.{key}", given[key], "one of the keys " + ", ".join(rules))
    out = {}
    for key, (rule, default) in rules.items():
        if key in given:
            out[key] = rule(f"{name}.{key}", given[key])
        elif default is _REQUIRED:
            raise ConfigError(f"{name}.{key}", _MISSING, f"a value for {name}.{key} (it has no default)")
        elif default is not None:
            out[key] = copy.deepcopy(default)
    return out


# --- files named by the configuration: existence and format, without loading them ------------------------------

def _npz_shape(path, key, entry):
    """The shape of array ``entry`` of an .npz file, read from its header only."""
    try:
        with zipfile.ZipFile(path) as z:
            names = {n[:-4] if n.endswith(".npy") else n: n for n in z.namelist()}
            if entry not in names:
                raise ConfigError(key, entry, f"one of the arrays in {path}: " + ", ".join(sorted(names)))
            with z.open(names[entry]) as fh:
                major, _ = np.lib.format.read_magic(fh)
                read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                shape, _, dtype = read(fh)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise FileFormatError(path, f"is not a readable .npz archive ({exc})") from None
    if dtype.kind not in "biuf":
        raise FileFormatError(path, f"array {entry!r} has dtype {dtype}; expected real numbers")
    return shape


def _csv_columns(path, delimiter) -> int:
    try:
        with open(path, encoding="utf-8") as fh:
            first = fh.readline()
    except UnicodeDecodeError:
        raise FileFormatError(path, "is not a UTF-8 text (CSV) file") from None
    except OSError as exc:
        raise FileFormatError(path, f"cannot be read ({exc.strerror or exc})") from None
    if not first.strip():
        raise FileFormatError(path, "is empty or starts with an empty line; expected CSV rows")
    return len(first.split(delimiter))


def _data_shape(data: dict):
    """(n, d) of the training inputs a data table describes (n = None for Gaussian inputs)."""
    kind = data["kind"]
    if kind == "teacher_student":
        return data["n_train"], data["d"]
    if kind == "digits":
        return 1797, 64
    if kind == "npz":
        shape = _npz_shape(data["path"], "data.x_key", data["x_key"])
        if len(shape) != 2 or shape[0] < 1 or shape[1] < 1:
            raise FileFormatError(data["path"], f"array {data['x_key']!r} has shape {shape}; expected (n, d)")
        yshape = _npz_shape(data["path"], "data.y_key", data["y_key"])
        if yshape not in ((shape[0],), (shape[0], 1)):
            raise FileFormatError(data["path"], f"array {data['y_key']!r} has shape {yshape}; expected "
                                                f"({shape[0]},), one target per row of {data['x_key']!r}")
        for key in ("x_test_key", "y_test_key"):
            if key in data:
                _npz_shape(data["path"], f"data.{key}", data[key])
        if ("x_test_key" in data) != ("y_test_key" in data):
            raise ConfigError("data.x_test_key", data.get("x_test_key"), "both x_test_key and y_test_key, or neither")
        return int(shape[0]), int(shape[1])
    if kind == "csv":
        cols = _csv_columns(data["path"], data["delimiter"])
        if cols < 2:
            raise FileFormatError(data["path"], f"has {cols} column with delimiter {data['delimiter']!r}; "
                                                "expected at least one input column and a target column")
        size = os.path.getsize(data["path"])
        return max(1, size // (2 * cols)), cols - 1  # n: an upper bound, for the memory estimate only
    if "teacher_file" in data:
        shape = _npz_shape(data["teacher_file"], "data.teacher_key", data["teacher_key"])
        if len(shape) != 2 or shape[1] < 2:
            raise FileFormatError(data["teacher_file"], f"teacher {data['teacher_key']!r} has shape {shape}; "
                                                        "expected (k, d + 1) or (k, d + 2) rows (a*, w*[, b*])")
        d = shape[1] - 1 - int(data["bias"])
        if "d" in data and data["d"] != d:
            raise ConfigError("data.d", data["d"], f"d = {d}, the input dimension of the teacher in "
                                                   f"{data['teacher_file']}")
        return None, d
    if "d" not in data:
        raise ConfigError("data.d", _MISSING, "the input dimension (or a teacher_file)")
    return None, data["d"]


# --- the configuration ------------------------------------------------------------------------------------------

def _memory_bytes(n, d, m, p, record) -> int:
    """Peak memory a run needs beyond the interpreter: the data, about 12 particle arrays (integrator stages,
    observers' references, the recorder's row), an exact W2 cost matrix and a kernel on its probe points."""
    need = 8 * (12 * m * p + 2 * (n or 0) * d)
    if "w2" in record and m <= 1000:
        need += 16 * m * m
    if "kernel" in record:
        need += 8 * (2 * 128 * 128 + 128 * m * p)
    return need


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 1 << 62


@dataclass(frozen=True)
class RunConfig:
    """A validated run configuration: the six tables with defaults filled in.

    Attributes
    ----------
    data, model, dynamics, run, observers, output : dict
    source : str
        The file it was read from (its stem names the output files).
    pde : dict
        The [pde] table (empty unless ``dynamics.kind = "pde"``).
    """

    data: dict
    model: dict
    dynamics: dict
    run: dict
    observers: dict
    output: dict
    source: str = "<dict>"
    pde: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        """Stem of the output files: the configuration file's name without ``.toml``."""
        return Path(self.source).stem if self.source != "<dict>" else "run"

    @property
    def total_steps(self) -> int:
        """Steps from t = 0 to the end: ``run.n_steps``, or ``run.t_end / dynamics.dt`` rounded (not defined for
        ``dynamics.kind = "pde"``, whose steps are chosen by the CFL rule: see :attr:`snapshot_times`)."""
        if self.dynamics["kind"] == "pde":
            raise ConfigError("run.n_steps", None, "no step count for dynamics.kind = 'pde' (run.t_end, "
                                                   "run.snapshot_dt)")
        if "n_steps" in self.run:
            return int(self.run["n_steps"])
        return int(round(self.run["t_end"] / self.dynamics["dt"]))

    @property
    def snapshot_times(self) -> np.ndarray:
        """Snapshot times of a PDE run: ``k * run.snapshot_dt`` for k = 0, 1, ... below ``run.t_end``, then
        ``run.t_end`` itself (the last interval may be shorter)."""
        t_end, every = self.run["t_end"], self.run["snapshot_dt"]
        k = np.arange(int(np.ceil(t_end / every)) + 1, dtype=np.float64) * every
        return np.append(k[k < t_end - 1e-9 * every], t_end)

    def to_dict(self) -> dict:
        """The tables as plain data (JSON/TOML-serialisable): what result files record ([pde] only when set)."""
        return copy.deepcopy({t: getattr(self, t) for t in TABLES if t != "pde" or self.pde})

    def model_kwargs(self, scaling: str) -> dict:
        """The :class:`~meanfield.model.Model` arguments of one preset of ``run.scalings`` (d excluded)."""
        kw = {k: v for k, v in self.model.items() if k != "seed"}
        kw["scaling"] = scaling
        if scaling != "lazy":
            kw.pop("lazy_scale", None)
        if scaling != "explicit":
            for k in ("alpha", "beta", "c"):
                kw.pop(k, None)
        return kw

    def dynamics_kwargs(self) -> dict:
        """The :class:`~meanfield.flow.Dynamics` arguments."""
        kw = {k: v for k, v in self.dynamics.items() if k != "kind"}
        kw["layer_lr"] = tuple(kw["layer_lr"])
        return kw


def from_dict(tables: dict, source: str = "<dict>") -> RunConfig:
    """Validate configuration tables (as parsed from TOML). See :func:`load`."""
    from .flow import Dynamics  # the dataclasses hold the rules of their own combinations
    from .model import Model

    if not isinstance(tables, dict):
        raise ConfigError("config", tables, "a table of tables")
    if "sweep" in tables:
        raise ConfigError("sweep", tables["sweep"], "no [sweep] table in a single run: run a sweep with "
                                                    "`meanfield sweep CONFIG` (or meanfield.sweep.sweep)")
    for name in tables:
        if name not in TABLES:
            raise ConfigError(name, tables[name], "one of the tables " + ", ".join(f"[{t}]" for t in TABLES))
    for name in TABLES:
        if not isinstance(tables.get(name, {}), dict):
            raise ConfigError(name, tables[name], f"a table [{name}]")
    given = {name: dict(tables.get(name, {})) for name in TABLES}
    pde_run = given["dynamics"].get("kind") == "pde"
    if pde_run:
        for table, keys in _PDE_UNUSED.items():
            for k in keys:
                if k in given[table]:
                    raise ConfigError(f"{table}.{k}", given[table][k], "no value for dynamics.kind = 'pde' (a density "
                                      "on a grid: no particles, the step chosen by pde.cfl, snapshots every "
                                      "run.snapshot_dt, fixed observables)")
    elif given["pde"]:
        raise ConfigError("pde", given["pde"], "no [pde] table unless dynamics.kind = 'pde'")

    data = given["data"]
    kind = check_choice("data.kind", data.pop("kind", "teacher_student"), DATA_KINDS)
    data = {"kind": kind, **_check_table("data", data, _DATA[kind])}
    out = {}
    for name, rules in _TABLES.items():
        if pde_run:
            rules = {k: (r, None if k == "m" else d) for k, (r, d) in rules.items() if k not in _PDE_UNUSED.get(name, ())
                     or k == "m"}
        out[name] = _check_table(name, given[name], rules)
    model, dyn, run, obs, output = (out[k] for k in ("model", "dynamics", "run", "observers", "output"))
    if not pde_run:
        for key, table in (("teacher", data), ("snapshot_dt", run)):
            if key in table and not (table is data and kind == "teacher_student"):
                where = "data" if table is data else "run"
                raise ConfigError(f"{where}.{key}", table[key], "no value unless dynamics.kind = 'pde' (particle "
                                  "flows take data.teacher_file and run.snapshot_every)")

    dkind = dyn["kind"]
    if kind not in DYNAMICS_KINDS[dkind]:
        raise ConfigError("dynamics.kind", dkind, f"a kind for data.kind = {kind!r}: "
                          + ", ".join(k for k, kinds in DYNAMICS_KINDS.items() if kind in kinds))
    if dkind == "population" and dyn["integrator"] == "sgd":
        raise ConfigError("dynamics.integrator", "sgd", "euler, heun, rk4 or euler_maruyama for the population "
                                                        "flow (online SGD is dynamics.kind = 'online')")
    if dkind == "online" and dyn["integrator"] != "sgd":
        raise ConfigError("dynamics.integrator", dyn["integrator"], "'sgd' (with batch_size) for dynamics.kind = "
                                                                    "'online'")
    if kind == "teacher_student" and "teacher" in data:
        width = len(data["teacher"][0])
        if width not in (data["d"] + 1, data["d"] + 2) or (data["bias"] and width != data["d"] + 2):
            raise ConfigError("data.teacher", data["teacher"], f"rows of length d + 1 = {data['d'] + 1} "
                              f"(a*, w*) or d + 2 = {data['d'] + 2} (a*, w*, b*; with data.bias = true)")
        if data.get("k", len(data["teacher"])) != len(data["teacher"]):
            raise ConfigError("data.k", data["k"], f"{len(data['teacher'])} (the rows of data.teacher) or no value")
        data["bias"] = width == data["d"] + 2
    if kind == "gaussian_teacher" and data.get("activation", model["activation"]) != model["activation"]:
        raise ConfigError("data.activation", data["activation"], f"the student's activation, "
                          f"{model['activation']!r}: the population risk uses one activation for both")

    if ("t_end" in run) == ("n_steps" in run):
        if "t_end" in run:
            raise ConfigError("run.n_steps", run["n_steps"], "either run.t_end or run.n_steps, not both")
        run["t_end"] = 10.0
    run.setdefault("scalings", [model["scaling"]])
    if "explicit" not in run["scalings"]:
        for k in ("alpha", "beta", "c"):
            if k in model:
                raise ConfigError(f"model.{k}", model[k], "no value unless a scaling is 'explicit'")
    if "lazy_scale" in model and "lazy" not in run["scalings"]:
        raise ConfigError("model.lazy_scale", model["lazy_scale"], "no value unless a scaling is 'lazy'")

    if pde_run:
        run.setdefault("snapshot_dt", 0.1)
        cfg = RunConfig(data, model, dyn, run, obs, output, source, pde=_check_pde(data, model, dyn, run, given["pde"]))
        return cfg
    cfg = RunConfig(data, model, dyn, run, obs, output, source)
    n, d = _data_shape(data)
    dynamics = Dynamics(**cfg.dynamics_kwargs())
    for scaling in run["scalings"]:
        m = Model(d=d, **cfg.model_kwargs(scaling))
    if dkind in ("particle", "linearized") and dynamics.integrator == "sgd" and dynamics.batch_size > n \
            and kind != "csv":
        raise ConfigError("dynamics.batch_size", dynamics.batch_size, f"at most n = {n} (training points)")
    if isinstance(output.get("particle_subset"), list) and max(output["particle_subset"]) >= m.m:
        raise ConfigError("output.particle_subset", output["particle_subset"], f"indices in [0, {m.m})")
    need, have = _memory_bytes(n, d, m.m, m.p, obs["record"]), _physical_memory()
    if need > have:
        raise ConfigError("model.m", m.m, f"a width whose arrays fit in memory: this run needs about "
                                          f"{need / 2**30:.3g} GiB, this machine has {have / 2**30:.3g} GiB")
    if cfg.total_steps == 0 and run.get("t_end", 0) > 0:
        raise ConfigError("run.t_end", run["t_end"], f"at least one step of dt = {dyn['dt']:g} (or 0)")
    return cfg


def _check_pde(data, model, dyn, run, given) -> dict:
    """The [pde] table and the combinations a PDE run needs (meanfield.pde: plane and radial settings)."""
    from .pde import PDEParams

    setting = check_choice("pde.setting", given.get("setting", "plane"), ("plane", "radial"))
    gaussian = data["kind"] == "gaussian_teacher"
    for key, where in _PDE_ONLY.items():
        if key in given and (where != setting or (key == "quad_points" and not gaussian)):
            raise ConfigError(f"pde.{key}", given[key], f"no value for pde.setting = {setting!r} on data.kind = "
                              f"{data['kind']!r} ({key} is a key of the "
                              f"{'plane population' if key == 'quad_points' else where} setting)")
    rules = {k: r for k, r in _PDE.items() if _PDE_ONLY.get(k, setting) == setting
             and (k != "quad_points" or gaussian)}
    pde = _check_table("pde", given, rules)
    if model["scaling"] != "mean_field":
        raise ConfigError("model.scaling", model["scaling"], "'mean_field' for dynamics.kind = 'pde' (the PDE is "
                                                             "the mean-field limit)")
    if run["scalings"] != ["mean_field"]:
        raise ConfigError("run.scalings", run["scalings"], "['mean_field'] for dynamics.kind = 'pde'")
    if model["bias"]:
        raise ConfigError("model.bias", True, "false for dynamics.kind = 'pde' (no bias in either setting)")
    if "teacher" in data and "teacher_file" in data:
        raise ConfigError("data.teacher", data["teacher"], "either data.teacher or data.teacher_file, not both")
    n, d = _data_shape(data)
    if setting == "plane":
        if d != 1:
            key = "data.d" if "d" in data else "data.kind"
            raise ConfigError(key, data.get("d", data["kind"]), f"inputs of dimension d = 1 for pde.setting = "
                              f"'plane' (these have d = {d}; pde.setting = 'radial' takes gaussian_teacher, d >= 2)")
        if gaussian and data["bias"]:
            raise ConfigError("data.bias", True, "false for pde.setting = 'plane' (teacher rows (a*, w*))")
    else:
        if not gaussian:
            raise ConfigError("data.kind", data["kind"], "'gaussian_teacher' for pde.setting = 'radial' (Gaussian "
                                                         "inputs: the rotation-invariant problem)")
        if d < 2:
            raise ConfigError("data.d", d, "d >= 2 for pde.setting = 'radial' (d = 1 is the plane setting)")
        if model["activation"] in _ODD:
            raise ConfigError("model.activation", model["activation"], "an activation with a non-zero even part "
                              "for pde.setting = 'radial' (relu, softplus, quadratic, sigmoid): an odd one averages "
                              "to 0 over directions")
        if "teacher" not in data:
            raise ConfigError("data.teacher", _MISSING, "teacher rings [[a*, s*], ...] for pde.setting = 'radial'")
        if data["bias"]:
            raise ConfigError("data.bias", True, "false for pde.setting = 'radial'")
        for key in ("cells", "extent"):
            if isinstance(pde.get(key), list):
                raise ConfigError(f"pde.{key}", pde[key], "one number for pde.setting = 'radial' (the s axis)")
    if "teacher" in data:
        rows = np.asarray(data["teacher"])
        if setting == "radial" and np.any(rows[:, 1] <= 0):
            raise ConfigError("data.teacher", data["teacher"], "rows [a*, s*] with radii s* > 0")
    if data.get("activation", model["activation"]) != model["activation"]:
        raise ConfigError("data.activation", data["activation"], f"the student's activation, "
                          f"{model['activation']!r}: the PDE uses one activation for teacher and student")
    PDEParams(lr=dyn["lr"], layer_lr=dyn["layer_lr"][:2], weight_decay=dyn["weight_decay"],
              temperature=dyn["temperature"], order=pde["order"], cfl=pde["cfl"], dt_max=pde.get("dt_max"))
    for key in ("sigma_a", "sigma_w") if setting == "plane" else ("sigma_w",):
        if model[key] <= 0:
            raise ConfigError(f"model.{key}", model[key], "a standard deviation > 0 for dynamics.kind = 'pde' (the "
                                                          "initial law must have a density)")
    count = run["t_end"] / run["snapshot_dt"]
    if count > 1e6:
        raise ConfigError("run.snapshot_dt", run["snapshot_dt"], f"at most 10^6 snapshots up to run.t_end = "
                                                                 f"{run['t_end']:g} (this gives {count:.3g})")
    cells = pde["cells"] if isinstance(pde["cells"], list) else [pde["cells"]] * (2 if setting == "plane" else 1)
    need, have = 8 * 12 * int(np.prod(cells)), _physical_memory()
    if need > have:
        raise ConfigError("pde.cells", pde["cells"], f"a grid whose arrays fit in memory: about {need / 2**30:.3g} "
                                                     f"GiB needed, {have / 2**30:.3g} GiB here")
    return pde


def parse_override(text: str):
    """Parse ``section.key=value`` (value in TOML syntax; bare words are strings) into (section, key, value)."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError("--set", text, "section.key=value, e.g. model.m=1000 or dynamics.integrator=rk4")
    lhs, rhs = text.split("=", 1)
    section, key = (part.strip() for part in lhs.split(".", 1))
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
        When the file is missing, unreadable, not UTF-8 or not valid TOML.
    ConfigError
        When a key or value is not allowed, or the run would not fit in memory.
    """
    tables = read_tables(path)
    for item in overrides:
        section, key, value = parse_override(item)
        if not isinstance(tables.setdefault(section, {}), dict):
            raise ConfigError(section, tables[section], f"a table [{section}]")
        tables[section][key] = value
    return from_dict(tables, source=str(path))


def read_tables(path) -> dict:
    """The tables of a TOML configuration file, not yet validated (FileFormatError naming the file when it is
    missing, unreadable, not UTF-8 or not TOML)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FileFormatError(path, f"cannot read the configuration ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileFormatError(path, f"is not UTF-8 text (byte {exc.start}): expected a TOML configuration") from None
    try:
        tables = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FileFormatError(path, f"is not valid TOML ({str(exc).splitlines()[0]})") from None
    return tables
