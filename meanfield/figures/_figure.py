r"""The machinery every canonical figure shares: its configuration, its runs, its claims, its files.

A figure is a module of :mod:`meanfield.figures` with

* ``TITLE`` and ``REFERENCE`` (the paper and figure it reproduces),
* ``compute(fig: FigureRun) -> dict``: every number the figure shows, JSON-serialisable, computed from runs made
  with :meth:`FigureRun.run` (the run pipeline, :func:`meanfield.run.run_config`) and :meth:`FigureRun.sweep`
  (Dask, :func:`meanfield.sweep.sweep`). Two keys are read by the machinery: ``claims`` (claim name -> the
  measured value) and ``highlights`` (label -> a number shown in docs/figures.md);
* ``plot(numbers: dict, params: dict) -> matplotlib.figure.Figure``: draws them (the machinery saves PNG and PDF).

Its configuration is ``examples/configs/figures/<name>.toml``: the run tables of docs/config.md (``[data]``,
``[model]``, ...; the base of every run the figure makes), a ``[figure]`` table of the figure's own parameters
and claims, and a ``[quick]`` table whose sub-tables are merged over the others for ``--quick``::

    [figure]
    widths = [32, 64, 128]
    [figure.claims.slope]             # compared with numbers["claims"]["slope"]
    value = -0.5                      # expected value ...
    tolerance = 0.15                  # ... within this (or: min = ..., max = ...)
    literature = "m^-1/2 (Chizat & Bach 2018)"
    why = "the standard error of a fit over 6 widths and 10 seeds is about 0.05"
    [quick.figure]
    widths = [32, 64]

A claim with ``full_only = true`` (a statement of the literature about the full-size setting, e.g. a value at a
width the quick run does not reach) is checked and reported in full runs only. A claim that does not hold is
reported (in the JSON, in docs/figures.md and by the command line) beside the
literature's value; it is never an error of the full run. ``--quick`` runs are what the tests assert.
"""

from __future__ import annotations

import copy
import json
import math
import os
import platform
import shutil
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import ConfigError, FileFormatError

__all__ = ["FigureRun", "Claim", "fit_slope", "load_figure_config", "merge", "check_claims", "jsonable",
           "config_folder", "compact"]


def merge(base: dict, over: dict) -> dict:
    """``base`` with the tables of ``over`` merged in recursively (a deep copy; values of ``over`` win)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def config_folder(folder=None) -> Path:
    """The folder of the figure configurations: ``folder``, else ``examples/configs/figures`` of the current
    folder, else of the repository this package was installed from."""
    if folder is not None:
        path = Path(folder)
        if not path.is_dir():
            raise ConfigError("--configs", str(folder), "a folder of figure configurations (examples/configs/figures)")
        return path
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        path = root / "examples" / "configs" / "figures"
        if path.is_dir():
            return path
    raise ConfigError("--configs", None, "the folder examples/configs/figures of a clone of the meanfield "
                                         "repository (run from the clone, or pass --configs)")


def load_figure_config(name: str, quick: bool, folder=None) -> tuple:
    """``(tables, params, path)``: the run tables and the ``[figure]`` table of ``<name>.toml``, with
    ``[quick]`` merged over both when ``quick``."""
    from ..config import TABLES, read_tables

    path = config_folder(folder) / f"{name}.toml"
    if not path.is_file():
        raise FileFormatError(path, f"is missing: the configuration of figure {name!r}")
    tables = read_tables(path)
    quick_tables = tables.pop("quick", {})
    if not isinstance(quick_tables, dict):
        raise ConfigError("quick", quick_tables, f"a table of tables to merge for --quick (in {path})")
    if quick:
        tables = merge(tables, quick_tables)
    params = tables.pop("figure", {})
    for key in tables:
        if key not in TABLES:
            raise ConfigError(key, tables[key], "one of the tables [figure], [quick], " +
                              ", ".join(f"[{t}]" for t in TABLES) + f" (in {path})")
    claims = params.get("claims", {})
    for cname, spec in claims.items():
        if not isinstance(spec, dict) or not ({"value", "min", "max"} & set(spec)) or \
                ("value" in spec) != ("tolerance" in spec):
            raise ConfigError(f"figure.claims.{cname}", spec, "a table with value and tolerance, or min and/or max "
                                                             f"(in {path})")
    return tables, params, path


class Claim(NamedTuple):
    """One claim of a figure: the measured value against what the configuration expects."""

    name: str
    measured: float
    expected: str
    holds: bool
    literature: str
    why: str


def _expected(spec: dict) -> str:
    if "value" in spec:
        return f"{spec['value']:g} ± {spec['tolerance']:g}"
    if "min" in spec and "max" in spec:
        return f"in [{spec['min']:g}, {spec['max']:g}]"
    return f"≥ {spec['min']:g}" if "min" in spec else f"≤ {spec['max']:g}"


def check_claims(params: dict, measured: dict, quick: bool = False) -> list:
    """Compare ``measured`` (claim name -> value) with the claims of the ``[figure]`` table (in quick mode
    without those marked ``full_only``)."""
    out = []
    for name, spec in params.get("claims", {}).items():
        if quick and spec.get("full_only", False):
            continue
        if name not in measured:
            raise KeyError(f"the figure did not measure its claim {name!r}")
        x = float(measured[name])
        if "value" in spec:
            holds = abs(x - spec["value"]) <= spec["tolerance"]
        else:
            holds = spec.get("min", -math.inf) <= x <= spec.get("max", math.inf)
        holds = bool(holds and math.isfinite(x))
        out.append(Claim(name, x, _expected(spec), holds, str(spec.get("literature", "")), str(spec.get("why", ""))))
    return out


def fit_slope(x, y) -> tuple:
    r"""Least-squares slope of :math:`\log y` against :math:`\log x`, and its standard error
    :math:`\sqrt{\sum_i r_i^2/(n-2) \,/\, \sum_i (\log x_i - \overline{\log x})^2}` (nan with fewer than three
    points). Points with a non-positive or non-finite value are left out."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = (x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)
    lx, ly = np.log(x[ok]), np.log(y[ok])
    if lx.size < 2:
        return math.nan, math.nan
    b, a = np.polyfit(lx, ly, 1)
    if lx.size < 3:
        return float(b), math.nan
    r = ly - (a + b * lx)
    return float(b), float(math.sqrt(r @ r / (lx.size - 2) / np.sum((lx - lx.mean()) ** 2)))


def compact(a, digits: int = 5) -> np.ndarray:
    """``a`` rounded to ``digits`` significant digits (for the long arrays a figure's JSON keeps for its plot)."""
    a = np.asarray(a, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = 10.0 ** (digits - 1 - np.floor(np.log10(np.abs(a))))
    scale = np.where(np.isfinite(scale), scale, 1.0)
    return np.round(a * scale) / scale


def jsonable(obj):
    """Numbers, arrays and tuples as plain JSON values (nan and inf as null)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


class FigureRun:
    """What a figure's ``compute`` works with.

    Attributes
    ----------
    name : str
        The figure's name.
    tables : dict
        The run tables of its configuration (the base of every run), ``[quick]`` merged in quick mode.
    params : dict
        Its ``[figure]`` table.
    quick : bool
    work : pathlib.Path
        Folder of its runs (``<out>/runs/<name>``).
    source : str
        Path of the configuration file.
    """

    def __init__(self, name, tables, params, quick, work, source, *, scheduler=None, workers=None, resume=False,
                 log=None):
        self.name, self.tables, self.params, self.quick = name, tables, params, bool(quick)
        self.work, self.source, self.scheduler, self.workers = Path(work), str(source), scheduler, workers
        self.resume = resume
        self.out = self.work.parent.parent  # the figure's own folder: extra files (animations) go there
        self.log = log or (lambda line: None)
        self.runs_made = 0

    def config(self, *overrides: dict) -> dict:
        """The run tables with ``overrides`` (dicts of tables) merged in, in order."""
        out = self.tables
        for over in overrides:
            out = merge(out, over)
        return copy.deepcopy(out)

    def run(self, tag: str, *overrides: dict):
        """Run the base configuration with ``overrides`` through :func:`meanfield.run.run_config` into
        ``work/<tag>`` (``resume``: completed runs of an earlier call are kept). Returns its
        :class:`~meanfield.run.RunResult`."""
        from ..config import from_dict
        from ..run import run_config

        cfg = from_dict(self.config(*overrides), source=self.source)
        out = self.work / tag
        if not self.resume and out.exists():
            shutil.rmtree(out)
        res = run_config(cfg, out, resume=self.resume, progress=False)
        self.runs_made += len(res.runs)
        return res

    def sweep(self, tag: str, *overrides: dict, grid=None, zipped=None, seeds=None):
        """Run a sweep of the base configuration (with ``overrides``) on Dask into ``work/<tag>``: a local cluster,
        or the scheduler given to ``meanfield figures --scheduler``. Returns its
        :class:`~meanfield.sweep.SweepIndex`."""
        from ..sweep import define, sweep

        sw = define(self.config(*overrides), grid=grid, zipped=zipped, seeds=seeds)
        out = self.work / tag
        if not self.resume and out.exists():
            shutil.rmtree(out)
        idx = sweep(sw, out, scheduler=self.scheduler, workers=self.workers, progress=False, log=self.log)
        self.runs_made += len(sw.ids)
        return idx


def machine() -> dict:
    """The machine a figure was made on (for its JSON)."""
    return {"cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "numba_threads": os.environ.get("NUMBA_NUM_THREADS", "")}


def write_json(path: Path, record: dict) -> None:
    """Write ``record`` as JSON atomically (a temporary file renamed over ``path``)."""
    tmp = path.with_suffix(".json.tmp")
    record = jsonable(record)  # one top-level key per line; long arrays stay on theirs
    body = ",\n".join(f" {json.dumps(k)}: {json.dumps(v, allow_nan=False)}" for k, v in record.items())
    tmp.write_text("{\n" + body + "\n}\n")
    os.replace(tmp, path)


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
