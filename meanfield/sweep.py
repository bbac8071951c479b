r"""Parameter sweeps on Dask distributed: the same sweep on a laptop, a workstation or a cluster.

A sweep is a base configuration (docs/config.md) and a set of overrides: a grid (the product of the values of
each key), zipped keys (varied together), and a number of seeds. Each point of the sweep is one configured run,
:func:`meanfield.run.run_config`, executed on a Dask worker into its own folder ``runs/<run id>/``; the client
alone writes the index of runs (``index.csv`` and ``index.h5``): one row per flow of every run, with its
parameters, status, error, the final value of every scalar observable, the wall time and the file.

>>> points = expand({"model.m": [8, 16]}, {}, seeds=2)
>>> [(p["model.m"], p["seed"]) for p in points]
[(8, 0), (8, 1), (16, 0), (16, 1)]

The seed of a point sets ``model.seed`` (the initial particles) and ``dynamics.seed`` (noise, SGD batches and
online inputs); the data stay fixed unless a data key is swept. A run's id is a hash of its overrides, so it
stays the same when the grid grows, and re-running a sweep skips its completed runs, continues the interrupted
ones from their files and runs the rest.

Execution: by default a :class:`distributed.LocalCluster` of processes that the sweep starts and stops itself,
listening on 127.0.0.1 only, with ``workers`` processes of one task each and ``cores // workers`` numba threads
per run, so that workers times threads never exceed the cores (oversubscribed numba threads run 7 to 20 times
slower on a busy machine). With ``scheduler="tcp://host:port"`` the sweep goes to a running Dask cluster
(docs/sweeps.md shows how to start one by hand or with dask-jobqueue); its workers must see the output folder,
which is checked on every worker before any run starts. A worker that dies mid-run has its run retried on
another worker, which continues the file from its last snapshot; each run appears once in the index. Nothing is
pickled into result files or the index: they hold numbers and text.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import itertools
import json
import math
import os
import time
import tomllib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import interrupt
from .errors import ConfigError, FileFormatError

__all__ = ["Sweep", "SweepIndex", "define", "expand", "sweep", "load_sweep", "run_point", "INDEX_COLUMNS"]

#: Fixed columns of the index, before the parameters and the observables.
INDEX_COLUMNS = ("run", "scaling", "flow", "seed", "status", "error", "seconds", "file")
_PATH_KEYS = ("data.path", "data.teacher_file")


class Sweep(NamedTuple):
    """A validated sweep.

    Attributes
    ----------
    base : dict
        The base configuration tables (without ``[sweep]``).
    source : str
        The configuration file (its stem names the run files).
    points : list of dict
        One dict per run: ``key -> value`` overrides, plus ``seed`` (or None without seeds).
    ids : list of str
        The run id of each point.
    configs : list of RunConfig
        The validated configuration of each point.
    """

    base: dict
    source: str
    points: list
    ids: list
    configs: list

    @property
    def keys(self) -> list:
        """The swept keys, in order."""
        return [k for k in self.points[0] if k != "seed"] if self.points else []


def _parse_values(key, text):
    values = []
    for item in text.split(","):
        item = item.strip()
        try:
            values.append(tomllib.loads(f"v = {item}")["v"])
        except tomllib.TOMLDecodeError:
            values.append(item)
    if not text.strip() or any(v == "" for v in values):
        raise ConfigError(f"--grid {key}", text, "comma-separated values, e.g. model.m=256,1024")
    return values


def parse_grid(items) -> dict:
    """``["model.m=256,1024", ...]`` (the ``--grid`` options) -> ``{"model.m": [256, 1024], ...}``."""
    grid = {}
    for item in items:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ConfigError("--grid", item, "section.key=v1,v2,..., e.g. model.m=256,1024,4096")
        key, text = (s.strip() for s in item.split("=", 1))
        grid[key] = _parse_values(key, text)
    return grid


def expand(grid: dict, zipped: dict, seeds: int | None) -> list:
    """The points of a sweep: the product of the grid's values, times the zipped keys (varied together), times the
    seeds ``0, 1, ..., seeds - 1``; each point is ``{key: value, ..., "seed": s}`` (``seed`` None without seeds)."""
    lengths = {len(v) for v in zipped.values()}
    if len(lengths) > 1:
        raise ConfigError("sweep.zip", {k: len(v) for k, v in zipped.items()}, "lists of one common length")
    zip_rows = [dict(zip(zipped, row)) for row in zip(*zipped.values())] if zipped else [{}]
    grid_rows = [dict(zip(grid, row)) for row in itertools.product(*grid.values())] if grid else [{}]
    seed_list = list(range(seeds)) if seeds else [None]
    return [{**g, **z, "seed": s} for g in grid_rows for z in zip_rows for s in seed_list]


def _run_id(point) -> str:
    return "r" + hashlib.sha256(json.dumps(point, sort_keys=True).encode()).hexdigest()[:10]


def _apply(base: dict, point: dict) -> dict:
    tables = copy.deepcopy(base)
    for key, value in point.items():
        if key == "seed":
            if value is not None:
                tables.setdefault("model", {})["seed"] = value
                tables.setdefault("dynamics", {})["seed"] = value
            continue
        section, name = key.split(".", 1)
        if not isinstance(tables.setdefault(section, {}), dict):
            raise ConfigError(section, tables[section], f"a table [{section}]")
        tables[section][name] = value
    for key in _PATH_KEYS:  # workers may run elsewhere: paths are made absolute where the sweep is defined
        section, name = key.split(".")
        if isinstance(tables.get(section, {}).get(name), str):
            tables[section][name] = str(Path(tables[section][name]).resolve())
    return tables


def _check_grid(name, table):
    if not isinstance(table, dict):
        raise ConfigError(name, table, "a table of 'section.key' = [values]")
    for key, values in table.items():
        if "." not in key:
            raise ConfigError(f"{name}.{key}", values, "a key 'section.key', e.g. \"model.m\"")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{name}.{key}", values, "a non-empty list of values")
    return dict(table)


def define(config, *, grid=None, zipped=None, seeds=None, overrides=()) -> Sweep:
    """Validate a whole sweep before anything runs: every point's configuration is checked.

    Parameters
    ----------
    config : str, os.PathLike or dict
        A TOML file (its ``[sweep]`` table holds ``grid``, ``zip`` and ``seeds``), or its tables.
    grid : dict, optional
        ``"section.key" -> list of values``; added to (and overriding) the file's ``[sweep.grid]``.
    zipped : dict, optional
        Keys varied together (lists of one length); added to the file's ``[sweep.zip]``.
    seeds : int, optional
        Number of seeds 0 .. seeds - 1 (default the file's ``sweep.seeds``, else no seed axis).
    overrides : sequence of str
        ``section.key=value`` applied to the base (as ``--set``).

    Returns
    -------
    Sweep

    Raises
    ------
    ConfigError
        Naming the grid key, or the first point whose configuration is refused (and the key in it).
    """
    from .config import from_dict, parse_override, read_tables

    if isinstance(config, dict):
        tables, source = copy.deepcopy(config), "<dict>"
    else:
        tables, source = read_tables(config), str(config)
    for item in overrides:
        section, key, value = parse_override(item)
        tables.setdefault(section, {})[key] = value
    spec = tables.pop("sweep", {})
    if not isinstance(spec, dict):
        raise ConfigError("sweep", spec, "a table [sweep] with grid, zip, seeds")
    for key in spec:
        if key not in ("grid", "zip", "seeds"):
            raise ConfigError(f"sweep.{key}", spec[key], "one of the keys grid, zip, seeds")
    full_grid = {**_check_grid("sweep.grid", spec.get("grid", {})), **_check_grid("--grid", grid or {})}
    full_zip = {**_check_grid("sweep.zip", spec.get("zip", {})), **_check_grid("zip", zipped or {})}
    both = set(full_grid) & set(full_zip)
    if both:
        raise ConfigError("sweep.zip", sorted(both), "keys that are not also in the grid")
    n_seeds = spec.get("seeds") if seeds is None else seeds
    if n_seeds is not None:
        from .validate import check_int

        n_seeds = check_int("--seeds" if seeds is not None else "sweep.seeds", n_seeds, low=1)
    points = expand(full_grid, full_zip, n_seeds)
    configs = []
    for point in points:
        try:
            configs.append(from_dict(_apply(tables, point), source=source))
        except ConfigError as err:
            shown = ", ".join(f"{k}={v}" for k, v in point.items() if v is not None)
            grid_key = err.key if err.key in full_grid or err.key in full_zip else None
            key = f"--grid {grid_key}" if grid_key else err.key
            raise ConfigError(key, err.value, f"{err.allowed} (sweep point {shown})") from None
    return Sweep(tables, source, points, [_run_id(p) for p in points], configs)


# ---------------------------------------------------------------------------------------------------------------
# the work of one point, on a worker
# ---------------------------------------------------------------------------------------------------------------


def run_point(tables: dict, source: str, out: str, threads: int) -> list:
    """Run one point of a sweep (on a worker): :func:`meanfield.run.run_config` with ``resume=True`` into ``out``.

    Returns plain rows (dicts of numbers and text, nothing else): one per flow, with ``status`` ``completed``,
    ``diverged`` or ``failed`` (and the one-line ``error``). A worker that dies never returns: Dask retries the
    point on another worker, which continues the files.
    """
    import numba

    from .config import from_dict
    from .run import run_config

    numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    t0 = time.perf_counter()
    try:
        cfg = from_dict(tables, source=source)
        result = run_config(cfg, out, resume=True, progress=False)
    except Exception as exc:  # noqa: BLE001 - a failing point is recorded, never stops the sweep
        return [{"scaling": "", "flow": "", "status": "failed", "error": f"{type(exc).__name__}: {exc}".splitlines()[0],
                 "seconds": time.perf_counter() - t0, "file": "", "final": {}}]
    return [{"scaling": r.scaling, "flow": r.flow, "status": "completed" if r.status == "skipped" else r.status,
             "error": r.message.splitlines()[0] if r.message else "", "seconds": r.seconds,
             "file": str(Path(r.path).resolve()), "final": {k: float(v) for k, v in r.final.items()}}
            for r in result.runs]


def _probe_folder(folder: str) -> str:
    """On a worker: create and remove a file in the sweep's folder; '' when that works, else the reason."""
    import socket

    path = Path(folder) / f".probe-{socket.gethostname()}-{os.getpid()}"
    try:
        path.write_text("meanfield sweep probe")
        path.unlink()
    except OSError as exc:
        return f"{socket.gethostname()}: {exc.strerror or exc}"
    return ""


# ---------------------------------------------------------------------------------------------------------------
# the index, written by the client only
# ---------------------------------------------------------------------------------------------------------------


def _columns(sw: Sweep, rows: dict) -> tuple:
    params = [k for k in sw.keys]
    observables = sorted({k for rs in rows.values() for r in rs for k in r.get("final", {})})
    return params, observables


def _table(sw: Sweep, rows: dict) -> dict:
    """Column name -> list, one entry per flow of every run (pending runs as one row with status pending)."""
    params, observables = _columns(sw, rows)
    cols = {c: [] for c in (*INDEX_COLUMNS, *params, *observables)}
    for run_id, point in zip(sw.ids, sw.points):
        for r in rows.get(run_id) or [{"scaling": "", "flow": "", "status": "pending", "error": "", "seconds": math.nan,
                                       "file": "", "final": {}}]:
            cols["run"].append(run_id)
            cols["seed"].append(-1 if point["seed"] is None else point["seed"])
            for c in ("scaling", "flow", "status", "error", "seconds", "file"):
                cols[c].append(r[c])
            for p in params:
                cols[p].append(point[p])
            for o in observables:
                cols[o].append(r["final"].get(o, math.nan))
    return cols


def _relative(path: str, folder: Path) -> str:
    """A run file's path relative to the sweep folder (so the folder can be moved), when it lies inside it."""
    if not path:
        return path
    try:
        return str(Path(path).resolve().relative_to(folder.resolve()))
    except ValueError:
        return path


#: Seconds between two rewrites of a running sweep's index (it is always written when the sweep ends or stops).
INDEX_EVERY = 1.0


def _write_index(folder: Path, sw: Sweep, rows: dict) -> None:
    """index.csv and index.h5, each written to a temporary name and renamed into place (never half-written)."""
    import h5py

    cols = _table(sw, rows)
    tmp = folder / ".index.csv.partial"
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(list(cols))
        for row in zip(*cols.values()):
            w.writerow([repr(v) if isinstance(v, float) else v for v in row])
    os.replace(tmp, folder / "index.csv")
    tmp = folder / ".index.h5.partial"
    with h5py.File(tmp, "w") as f:
        f.attrs["meanfield_sweep"] = json.dumps({"base": sw.base, "source": sw.source, "points": sw.points,
                                                 "ids": sw.ids}, sort_keys=True, default=str)
        f.attrs["columns"] = json.dumps(list(cols))
        for name, values in cols.items():
            arr = np.asarray(values)
            if arr.dtype.kind in "OUS" or arr.size == 0:
                arr = np.asarray([str(v) for v in values], dtype=h5py.string_dtype())
            f.create_dataset(name.replace("/", "|"), data=arr)
    os.replace(tmp, folder / "index.h5")


class SweepIndex:
    """The index of a sweep folder (:func:`load_sweep`): one row per flow of every run.

    Attributes
    ----------
    folder : Path
    columns : dict of str to ndarray
        Every column, dtypes kept (numbers as numbers, text as str).
    parameters : list of str
        The swept keys.
    """

    def __init__(self, folder):
        import h5py

        self.folder = Path(folder)
        path = self.folder / "index.h5"
        if not path.exists():
            raise FileFormatError(path, "no such file: not a sweep folder (run `meanfield sweep` first)")
        try:
            with h5py.File(path, "r") as f:
                names = json.loads(f.attrs["columns"])
                self.definition = json.loads(f.attrs["meanfield_sweep"])
                self.columns = {}
                for n in names:
                    a = f[n.replace("/", "|")][()]
                    self.columns[n] = np.asarray([v.decode() for v in a]) if a.dtype.kind == "O" else a
        except (OSError, KeyError, ValueError) as exc:
            raise FileFormatError(path, f"is not a readable sweep index ({exc})") from None
        self.parameters = [k for k in (self.definition["points"][0] if self.definition["points"] else {}) if k != "seed"]

    def __len__(self) -> int:
        return len(self.columns["run"])

    def table(self):
        """The index as a pandas DataFrame where pandas is installed, else the dict of columns."""
        try:
            import pandas as pd
        except ImportError:
            return dict(self.columns)
        return pd.DataFrame(self.columns)

    def counts(self) -> dict:
        """How many runs (not flows) are in each status: a run counts as completed when all its flows are."""
        status = {}
        for run in dict.fromkeys(self.columns["run"]):
            mine = set(self.columns["status"][self.columns["run"] == run])
            s = "completed" if mine == {"completed"} else next(iter(sorted(mine - {"completed"})))
            status[s] = status.get(s, 0) + 1
        return status

    def path(self, row: int) -> Path:
        """The file of index row ``row`` (paths in the index are relative to the sweep folder)."""
        return self.folder / self.columns["file"][row]

    def trajectory(self, row: int):
        """The trajectory of index row ``row``, opened lazily (:func:`meanfield.load`)."""
        from .trajectory import load

        return load(self.path(row))

    def reduce(self, value: str, by=None, stats=("mean", "std", "q10", "median", "q90")) -> dict:
        """Statistics of ``value`` over seeds, for every combination of the other parameters.

        Parameters
        ----------
        value : str
            An observable column (its final value).
        by : sequence of str, optional
            Columns that define a group (default: the swept parameters, scaling and flow).
        stats : sequence of str
            ``mean``, ``std`` (sample, ddof = 1), ``median``, ``qXX`` (the XX-th percentile), ``n``.

        Returns
        -------
        dict
            Column name -> ndarray: the group columns, then one per statistic, one row per group.
        """
        by = list(self.parameters if by is None else by) + (["scaling", "flow"] if by is None else [])
        if value not in self.columns:
            raise ConfigError("value", value, "an observable column: " + ", ".join(self.columns))
        ok = self.columns["status"] == "completed"
        keys = list(zip(*(self.columns[b][ok] for b in by))) if by else [()] * int(ok.sum())
        vals = np.asarray(self.columns[value][ok], dtype=float)
        groups = {}
        for k, v in zip(keys, vals):
            groups.setdefault(k, []).append(v)
        out = {b: np.asarray([k[i] for k in groups]) for i, b in enumerate(by)}
        for s in stats:
            fn = {"mean": np.mean, "median": np.median, "n": len,
                  "std": lambda x: np.std(x, ddof=1) if len(x) > 1 else math.nan}.get(s)
            if fn is None and s.startswith("q"):
                fn = (lambda q: lambda x: np.percentile(x, q))(float(s[1:]))
            if fn is None:
                raise ConfigError("stats", s, "mean, std, median, n or qXX")
            out[s] = np.asarray([fn(np.asarray(v)) for v in groups.values()], dtype=float)
        return out


def load_sweep(folder) -> SweepIndex:
    """Open the index of a sweep folder."""
    return SweepIndex(folder)


def info(folder) -> str:
    """A short summary of a sweep folder (what ``meanfield sweep-info DIR`` prints)."""
    idx = load_sweep(folder)
    counts = idx.counts()
    runs = sum(counts.values())
    lines = [f"{idx.folder}: sweep of {runs} runs over {', '.join(idx.parameters) or 'no parameters'}"
             + ("" if not (idx.columns["seed"] >= 0).any() else f" x {len(set(idx.columns['seed']))} seeds"),
             "  " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))]
    failed = [(r, e) for r, s, e in zip(idx.columns["run"], idx.columns["status"], idx.columns["error"])
              if s in ("failed", "diverged")]
    for r, e in failed[:10]:
        lines.append(f"  {r}: {e}")
    obs = [c for c in idx.columns if c not in (*INDEX_COLUMNS, *idx.parameters)]
    done = idx.columns["status"] == "completed"
    for o in obs:
        v = np.asarray(idx.columns[o][done], dtype=float)
        if v.size:
            lines.append(f"  {o}: final values from {np.nanmin(v):.4g} to {np.nanmax(v):.4g} over {v.size} flows")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# running a sweep
# ---------------------------------------------------------------------------------------------------------------


def _previous(folder: Path, sw: Sweep) -> dict:
    """Rows of runs completed by an earlier run of this sweep (their files still present)."""
    if not (folder / "index.h5").exists():
        return {}
    idx = load_sweep(folder)
    done = {}
    for i, run in enumerate(idx.columns["run"]):
        done.setdefault(run, []).append(i)
    rows = {}
    for run, ix in done.items():
        if run in sw.ids and all(idx.columns["status"][i] == "completed" and idx.path(i).exists() for i in ix):
            obs = [c for c in idx.columns if c not in (*INDEX_COLUMNS, *idx.parameters)]
            rows[run] = [{"scaling": idx.columns["scaling"][i], "flow": idx.columns["flow"][i], "status": "completed",
                          "error": "", "seconds": float(idx.columns["seconds"][i]), "file": idx.columns["file"][i],
                          "final": {o: float(idx.columns[o][i]) for o in obs if not math.isnan(idx.columns[o][i])}}
                         for i in ix]
    return rows


def sweep(config, out=None, *, grid=None, zipped=None, seeds=None, overrides=(), scheduler=None, workers=None,
          threads=None, progress=None, log=None) -> SweepIndex:
    """Run a sweep on Dask: every point of :func:`define`, one :func:`meanfield.run.run_config` per point.

    Parameters
    ----------
    config, grid, zipped, seeds, overrides
        As in :func:`define`.
    out : str or os.PathLike, optional
        The sweep folder (default: ``output.dir`` of the base configuration). Runs go to ``out/runs/<run id>``.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:port``); default: a local cluster started here.
    workers : int, optional
        Worker processes of the local cluster (default: the number of cores).
    threads : int, optional
        Numba threads per run (default: cores // workers on the local cluster, 1 on a remote one).
    progress : bool, optional
        A progress bar over runs (default: on a terminal).
    log : callable, optional
        Receives lines about the cluster (its dashboard address).

    Returns
    -------
    SweepIndex
        Re-running the same sweep skips completed runs, continues interrupted ones and runs the rest.
    """
    from distributed import Client, LocalCluster, as_completed
    from tqdm.auto import tqdm

    import sys

    sw = config if isinstance(config, Sweep) else define(config, grid=grid, zipped=zipped, seeds=seeds,
                                                         overrides=overrides)
    folder = Path(out if out is not None else sw.configs[0].output["dir"])
    interrupt.check()
    cores = os.cpu_count() or 1
    cluster = None
    if scheduler is None:
        from .validate import check_int

        n = check_int("--workers", workers, low=1) if workers is not None else cores
        per_run = threads if threads is not None else max(1, cores // n)
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address="127.0.0.1:0", silence_logs=50,
                               env={"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
        client = Client(cluster)
    else:
        per_run = threads if threads is not None else 1
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise ConfigError("--scheduler", scheduler, f"the address of a running Dask scheduler ({exc})") from None
    try:
        if log is not None:
            where = "local cluster" if cluster is not None else "cluster"
            log(f"Dask {where}: scheduler {client.scheduler.address}, dashboard {client.dashboard_link}")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "runs").mkdir(exist_ok=True)
        except OSError as exc:
            raise ConfigError("output.dir", str(folder), f"a folder that can be created ({exc.strerror})") from None
        client.wait_for_workers(1, timeout=60)
        problems = [p for p in client.run(_probe_folder, str(folder.resolve())).values() if p]
        if problems:
            raise ConfigError("output.dir", str(folder), f"a folder every worker can write to (shared file system); "
                                                         f"{problems[0]}")
        rows = _previous(folder, sw)
        todo = [(i, p) for i, p in enumerate(sw.ids) if p not in rows]
        _write_index(folder, sw, rows)
        futures = {}
        for i, run_id in todo:
            tables = _apply(sw.base, sw.points[i])
            futures[client.submit(run_point, tables, sw.source, str((folder / "runs" / run_id).resolve()), per_run,
                                  key=f"meanfield-{run_id}", pure=False)] = run_id
        show = sys.stderr.isatty() if progress is None else progress
        with tqdm(total=len(sw.ids), initial=len(sw.ids) - len(todo), disable=not show, unit="run",
                  desc="sweep") as bar:
            queue = as_completed(list(futures))
            # the index is rewritten as runs finish, at most once per INDEX_EVERY seconds (each write costs
            # O(runs): rewriting it after every one of many short runs would cost O(runs^2)), and at the end
            written, stale = time.monotonic(), False
            try:
                while not queue.is_empty():
                    done = queue.next_batch(block=False)
                    if not done:
                        if stale and time.monotonic() - written >= INDEX_EVERY:
                            _write_index(folder, sw, rows)
                            written, stale = time.monotonic(), False
                        interrupt.check()
                        time.sleep(0.1)
                        continue
                    for fut in done:
                        run_id = futures[fut]
                        if fut.status == "finished":
                            rows[run_id] = [{**r, "file": _relative(r["file"], folder)} for r in fut.result()]
                        else:  # the point's task itself failed (e.g. its workers kept dying)
                            exc = fut.exception()
                            rows[run_id] = [{"scaling": "", "flow": "", "status": "failed",
                                             "error": f"{type(exc).__name__}: {exc}".splitlines()[0],
                                             "seconds": math.nan, "file": "", "final": {}}]
                        bar.update(1)
                    stale = True
                    if time.monotonic() - written >= INDEX_EVERY:
                        _write_index(folder, sw, rows)
                        written, stale = time.monotonic(), False
                    interrupt.check()
                if stale:
                    _write_index(folder, sw, rows)
            except BaseException:  # Ctrl-C, SIGTERM (interrupt.check), anything: the finished runs are indexed
                client.cancel([f for f in futures if not f.done()])
                _write_index(folder, sw, rows)
                raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return load_sweep(folder)
