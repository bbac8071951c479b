r"""Record a run as it goes into one HDF5 file in the H5MD 1.1 layout (plain h5py; read it back with
:func:`meanfield.load`).

The run loop :func:`meanfield.run.simulate` drives a recorder through three calls: ``begin(flow, state)``,
``append(state, values)`` after every snapshot, and ``close(status)``. :class:`Recorder` is the sink of the
primary flow (``/particles/neurons``, ``/observables/<name>``); ``recorder.group("linearized")`` returns a sink
with the same three calls for a second flow of the same run (``/particles/linearized``,
``/observables/linearized/<name>``). The tree (docs/hdf5-format.md has every attribute)::

    run.h5
     \-- h5md                      version = [1, 1]
     |    \-- author               name
     |    \-- creator              name = "meanfield", version
     \-- particles
     |    \-- neurons
     |         \-- box             dimension = p, boundary = ["none"] * p
     |         \-- id              (m_s,) indices of the stored particles
     |         \-- position
     |              \-- step (T,) int64   time (T,) float64   value (T, m_s, p)
     \-- observables
     |    \-- train_loss, test_loss, displacement, ...      {step, time, value (T, ...)}
     |    \-- linearized/<name>                             (a second flow)
     \-- parameters                format_version, seed, rng_state
          \-- status, end_time     fixed-size strings, rewritten in place
          \-- config               attribute json + one subgroup per table with one attribute per key
          \-- data                 name, recipe, n, d, n_test (+ X, y, ... when no recipe rebuilds them)
          \-- provenance           versions, host, pid, argv, start_time
          \-- flows/<name>         model, dynamics (JSON), m, stored, status
          \-- resume/<name>        full float64 state when particles are stored lossy

Streaming and crash safety: every chunked dataset grows by one row per snapshot. Particle snapshots and array
observables have one chunk per row, written once, with gzip (default), lzf or no compression and Fletcher-32
checksums; step, time and scalar observables have 256 rows per chunk, unfiltered, so rewriting a chunk as it
fills never changes the bytes of committed rows. A snapshot is written in the order resume record,
observables, particles, and within each element value, time, then step: the step dataset's length marks what
is committed. After every snapshot the file is flushed. The file is written in SWMR mode (``libver="latest"``,
ordered metadata writes) with paged aggregation, so no metadata block crosses a page and a SIGKILL, which
Linux delivers between the pages of a write, cannot tear one: a killed file opens with every snapshot flushed
before the kill (docs/hdf5-format.md, "Crash safety", states the argument and its limits). A fresh file is
built under a temporary name and renamed into place only once it is complete and in SWMR mode; later
structural changes happen on a copy renamed over the file. The status lives in a dataset (not an attribute)
so it can be rewritten in SWMR mode.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import getpass
import json
import mmap
import os
import platform
import shutil
import socket
import sys
from importlib import metadata as _metadata
from pathlib import Path

import h5py
import numpy as np

from .errors import ConfigError, FileFormatError
from ._hdf5 import (FORMAT_VERSION, H5MD_VERSION, PRIMARY, STATUSES, check_layout, clear_status_flags, committed,
                    open_file)
from .validate import DTYPES, check_choice, check_int

__all__ = ["Recorder", "Sink", "FieldSink", "COMPRESSIONS"]

#: Compression choices: name -> (h5py filter, option).
COMPRESSIONS = {"gzip": ("gzip", 4), "lzf": ("lzf", None), "none": (None, None)}

_STATUS_DTYPE = "S16"
_TIME_DTYPE = "S40"
_SERIES_CHUNK = 256  # rows per chunk of step/time/scalar observables
#: HDF5 file-space page (paged aggregation): no metadata block or small chunk smaller than a page crosses a
#: page boundary, so each in-place rewrite is one write inside one page of the operating system's page cache,
#: which a SIGKILL cannot tear (Linux checks for a fatal signal only between the pages of a write).
PAGE_SIZE = max(4096, mmap.PAGESIZE)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _version(dist: str) -> str:
    try:
        return _metadata.version(dist)
    except _metadata.PackageNotFoundError:
        return "not installed"


def _meanfield_version() -> str:
    from . import __version__  # at call time: meanfield/__init__ may import this module

    return str(__version__)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _to_json(obj) -> str:
    return json.dumps(_jsonable(obj), sort_keys=True, default=repr)


def _attr_value(value):
    """A value HDF5 stores natively as an attribute, or its JSON text."""
    if isinstance(value, (bool, np.bool_, int, np.integer, float, np.floating, str)):
        return value
    if isinstance(value, (list, tuple)) and value:
        if all(isinstance(v, str) for v in value):
            return np.array([v.encode() for v in value])
        if all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in value):
            return np.asarray(value)
    return _to_json(value)


def _flatten(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict) and v:
            yield from _flatten(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host still runs (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except (OSError, IndexError):
        return True


class Sink:
    """Records one flow into ``/particles/<name>`` and its observables; made by :class:`Recorder`.

    Speaks the run loop's protocol: ``begin(flow, state)``, ``append(state, values, descriptions)``,
    ``close(status)``.
    """

    def __init__(self, recorder: "Recorder", name: str):
        self._rec, self.name = recorder, name
        self._obs_root = "observables" if name == PRIMARY else f"observables/{name}"
        self._flow = None
        self._active = False
        self._last_particle_step = -1
        self._last_obs_step = {}
        self._slot = 0
        self.status = None
        self._meta = f"parameters/flows/{name}"

    # --- protocol ----------------------------------------------------------------------------------------

    def begin(self, flow, state) -> None:
        """Start recording ``flow`` from ``state`` (nothing is written before the first snapshot)."""
        theta = np.asarray(state.theta)
        if theta.ndim != 2:
            raise ConfigError("state.theta", f"array of shape {theta.shape}", "particles of shape (m, p)")
        self._flow, self._start = flow, state
        self._m, self._p = theta.shape
        self._ids = self._rec._subset_ids(self._m)
        self._dtype = self._rec._particles_dtype
        self._lossy = self._dtype is not np.float64 or len(self._ids) != self._m
        self._active = True
        self.status = "running"
        f = self._rec._ensure_open()
        base = f"particles/{self.name}"
        if f is not None and base in f:
            stored = f[f"{base}/position/value"].shape[1:]
            ids = f[f"{base}/id"][:] if f"{base}/id" in f else np.arange(stored[0])
            if stored[1] != self._p or int(f[f"parameters/flows/{self.name}"].attrs.get("m", self._m)) != self._m:
                raise ConfigError(f"flow {self.name}", f"particles of shape {theta.shape}",
                                  f"the shape (m, p) = ({f[f'parameters/flows/{self.name}'].attrs.get('m')}, "
                                  f"{stored[1]}) already recorded in {self._rec.path}")
            self._ids = np.asarray(ids, dtype=np.int64)
            self._dtype = f[f"{base}/position/value"].dtype.type
            self._lossy = self._dtype is not np.float64 or len(self._ids) != self._m
            steps = f[f"{base}/position/step"]
            self._last_particle_step = int(steps[-1]) if steps.shape[0] else -1
            if self._obs_root in f:
                for key, grp in f[self._obs_root].items():
                    if isinstance(grp, h5py.Group) and "step" in grp:
                        self._last_obs_step[key] = int(grp["step"][-1]) if grp["step"].shape[0] else -1
            if f"parameters/resume/{self.name}" in f:
                rs = f[f"parameters/resume/{self.name}/step"][:]
                self._slot = int(np.argmin(rs))
            self._rec._set_status(self.name, "running")

    def append(self, state, values=None, descriptions=None) -> None:
        """Write one snapshot: the particles of ``state`` and the observables ``values`` (name -> number or
        array); ``descriptions`` (name -> text) are stored with each observable when its series is created.
        Snapshots whose step is already in the file (after a resume) are skipped."""
        if not self._active:
            raise RuntimeError(f"append() on the {self.name!r} sink outside begin() ... close()")
        arrays = _observable_arrays(values)
        theta = np.asarray(state.theta, dtype=np.float64)
        if theta.shape != (self._m, self._p):
            raise ConfigError("state.theta", f"array of shape {theta.shape}", f"shape ({self._m}, {self._p})")
        step, t = int(state.step), float(state.t)
        rec = self._rec
        f = rec._file
        need = f is None or rec._cache_file is not f or any(
            f"{self._obs_root}/{k}" not in rec._cache for k in arrays) or f"particles/{self.name}/position" \
            not in rec._cache
        if need and f is not None:  # structure may exist already (resume): look before creating
            need = f"particles/{self.name}" not in f or any(f"{self._obs_root}/{k}" not in f for k in arrays) or \
                (self._lossy and f"parameters/resume/{self.name}" not in f)
        if need:
            with rec._editing() as f:
                self._create(f, arrays, step, t, theta, descriptions or {})
            f = rec._file
        for key, a in arrays.items():
            _check_like_first(key, a, self._datasets(f"{self._obs_root}/{key}")[0])
        self._datasets(f"particles/{self.name}/position")
        if self._lossy and step > self._last_particle_step:
            g = f[f"parameters/resume/{self.name}"]
            g["theta"][self._slot] = theta
            g["time"][self._slot] = t
            g["theta"].flush()
            g["time"].flush()
            g["step"][self._slot] = step
            g["step"].flush()
            self._slot = 1 - self._slot
        # Phase 1: values and times, flushed. Phase 2: the steps, which commit the rows (a reader counts rows
        # up to the first step that is still the fill value -1, so a row is never seen before its data).
        commit = []
        for key, a in arrays.items():
            if step > self._last_obs_step.get(key, -1):
                value, time, steps = self._datasets(f"{self._obs_root}/{key}")
                _extend((value, time), (a, t))
                commit.append(steps)
                self._last_obs_step[key] = step
        if step > self._last_particle_step:
            rows = theta if len(self._ids) == self._m else theta[self._ids]
            value, time, steps = self._datasets(f"particles/{self.name}/position")
            _extend((value, time), (rows.astype(self._dtype), t))
            commit.append(steps)
            self._last_particle_step = step
        if commit:
            f.flush()
            _extend(commit, [step] * len(commit))
        rec._commit()

    def close(self, status: str = "completed") -> None:
        """Mark this flow ``completed``, ``diverged`` or ``interrupted``; the file is closed when no flow is
        still being recorded."""
        if status not in STATUSES[1:]:
            raise ConfigError("status", status, "one of " + ", ".join(STATUSES[1:]))
        if not self._active:
            return
        self._active = False
        self.status = status
        self._rec._sink_closed(self, status)

    def _datasets(self, key):
        """(value, time, step) of an element, cached while the file stays open."""
        rec = self._rec
        if rec._cache_file is not rec._file:
            rec._cache, rec._cache_file = {}, rec._file
        if key not in rec._cache:
            g = rec._file[key]
            rec._cache[key] = (g["value"], g["time"], g["step"])
        return rec._cache[key]

    def _initial_array(self):
        return np.asarray(self._start.theta, dtype=np.float64)

    # --- structure -----------------------------------------------------------------------------------------

    def _create(self, f, arrays, step, t, theta, descriptions=None):
        rec = self._rec
        base = f"particles/{self.name}"
        if base not in f:
            g = f.require_group("particles").create_group(base.split("/", 1)[1])
            box = g.create_group("box")
            box.attrs["dimension"] = np.int32(self._p)
            box.attrs["boundary"] = np.array([b"none"] * self._p)
            g.create_dataset("id", data=np.asarray(self._ids, dtype=np.int64))
            pos = g.create_group("position")
            _series(pos, (len(self._ids), self._p), self._dtype, rec, chunk_rows=1)
            meta = f.require_group("parameters/flows").create_group(self.name)
            fl = self._flow
            meta.attrs["model"] = _to_json(fl.model.describe())
            meta.attrs["dynamics"] = _to_json(fl.dynamics.describe())
            meta.attrs["problem"] = type(fl.problem).__name__
            meta.attrs["noise_seed"] = np.int64(fl.dynamics.seed)
            meta.attrs["m"] = np.int64(self._m)
            meta.attrs["p"] = np.int64(self._p)
            meta.attrs["stored_particles"] = np.int64(len(self._ids))
            meta.attrs["particles_dtype"] = np.dtype(self._dtype).name
            meta.create_dataset("status", data=np.bytes_(self.status or "running"), dtype=_STATUS_DTYPE)
        if self._lossy and f"parameters/resume/{self.name}" not in f:
            r = f.require_group("parameters/resume").create_group(self.name)
            r.create_dataset("theta", shape=(2, self._m, self._p), dtype=np.float64)
            r.create_dataset("step", data=np.array([-1, -1], dtype=np.int64))
            r.create_dataset("time", data=np.zeros(2))
            r.create_dataset("theta0", data=theta)
            r.attrs["step0"] = np.int64(step)
            r.attrs["time0"] = float(t)
        _observable_series(f.require_group(self._obs_root), arrays, descriptions, rec)


def _observable_series(obs, arrays, descriptions, rec) -> None:
    """Create the time series of the observables not yet in group ``obs``, each with its description."""
    for key, a in arrays.items():
        if key not in obs:
            g = obs.create_group(key)
            _series(g, a.shape, a.dtype if a.dtype.kind in "fc" else np.float64, rec,
                    chunk_rows=_SERIES_CHUNK if a.size <= 16 else 1)
            if descriptions and key in descriptions:
                g.attrs["description"] = str(descriptions[key])


def _check_like_first(key, a, ds) -> None:
    """An observable's value must keep the shape and kind of number it had at its first snapshot."""
    if ds.shape[1:] != a.shape or (ds.dtype.kind != a.dtype.kind and not
                                   (ds.dtype.kind == "f" and a.dtype.kind in "iub")):
        raise ConfigError(f"observable {key}", f"value of shape {a.shape} and dtype {a.dtype}",
                          f"shape {ds.shape[1:]} and dtype {ds.dtype} as at its first snapshot")


def _observable_arrays(values) -> dict:
    """Observable values as arrays (floats as float64), names and types checked."""
    values = {} if values is None else dict(values)
    arrays = {}
    for key, v in values.items():
        if not isinstance(key, str) or not key or "/" in key or key == PRIMARY:
            raise ConfigError("observable name", key, "a non-empty string without '/'")
        a = np.asarray(v)
        if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
            raise ConfigError(f"observable {key}", v, "a number or a numeric array")
        if np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.complexfloating):
            a = a.astype(np.complex128 if np.iscomplexobj(a) else np.float64)
        arrays[key] = a
    return arrays


class FieldSink(Sink):
    r"""Records a field flow (a density on a grid, :func:`meanfield.pde.pde_flow`) into ``/fields/<name>`` and
    its observables into ``/observables/<observable>``; made by :meth:`Recorder.field_sink`.

    The same protocol as :class:`Sink`: ``begin(flow, state)``, ``append(state, values, descriptions,
    field=True)``, ``close(status)``. ``state`` is a :class:`meanfield.pde.DensityState`; with ``field=False``
    only the observables are written. The density is stored in float64 (the resume point of a run), one
    compressed, checksummed chunk per snapshot, in an H5MD time-dependent element::

        fields/<name>            lower (p,), upper (p,), cells (p,), axes (p,) names, setting
             \-- step (T,) int64   time (T,) float64   value (T, *cells) float64
        parameters/fields/<name> problem, params (JSON), tolerance; status

    Rows are committed like every other element: value and time first, flushed, then the step.
    """

    def __init__(self, recorder: "Recorder", name: str):
        super().__init__(recorder, name)
        self._obs_root = "observables"
        self._base = f"fields/{name}"
        self._meta = f"parameters/fields/{name}"

    def begin(self, flow, state) -> None:
        """Start recording the field flow ``flow`` from ``state`` (nothing is written before the first snapshot)."""
        rho = np.asarray(state.density)
        shape = tuple(int(c) for c in flow.grid.cells)
        if rho.shape != shape:
            raise ConfigError("state.density", f"array of shape {rho.shape}", f"the grid's shape {shape}")
        self._flow, self._start, self._shape = flow, state, shape
        self._active = True
        self.status = "running"
        f = self._rec._ensure_open()
        if f is not None and self._base in f:
            stored = f[f"{self._base}/value"].shape[1:]
            if tuple(stored) != shape:
                raise ConfigError("pde.cells", list(shape), f"the grid {list(stored)} already recorded in "
                                                             f"{self._rec.path}")
            steps = f[f"{self._base}/step"]
            self._last_particle_step = int(steps[-1]) if steps.shape[0] else -1
            for key, grp in f[self._obs_root].items() if self._obs_root in f else ():
                if isinstance(grp, h5py.Group) and "step" in grp:
                    self._last_obs_step[key] = int(grp["step"][-1]) if grp["step"].shape[0] else -1
            self._rec._flow_status[self.name] = "running"
            if f"{self._meta}/status" in f:
                f[f"{self._meta}/status"][()] = np.bytes_("running")
            f["parameters/status"][()] = np.bytes_("running")

    def append(self, state, values=None, descriptions=None, *, field: bool = True) -> None:
        """Write one snapshot: the observables ``values`` and, with ``field=True``, the density of ``state``.
        Snapshots whose step is already in the file (after a resume) are skipped."""
        if not self._active:
            raise RuntimeError(f"append() on the {self.name!r} field sink outside begin() ... close()")
        arrays = _observable_arrays(values)
        rho = np.asarray(state.density, dtype=np.float64)
        if rho.shape != self._shape:
            raise ConfigError("state.density", f"array of shape {rho.shape}", f"shape {self._shape}")
        step, t = int(state.step), float(state.t)
        rec = self._rec
        f = rec._file
        need = f is None or self._base not in f or any(f"{self._obs_root}/{k}" not in f for k in arrays)
        if need:
            with rec._editing() as f:
                self._create(f, arrays, step, t, rho, descriptions or {})
            f = rec._file
        for key, a in arrays.items():
            _check_like_first(key, a, self._datasets(f"{self._obs_root}/{key}")[0])
        commit = []
        for key, a in arrays.items():
            if step > self._last_obs_step.get(key, -1):
                value, time, steps = self._datasets(f"{self._obs_root}/{key}")
                _extend((value, time), (a, t))
                commit.append(steps)
                self._last_obs_step[key] = step
        if field and step > self._last_particle_step:
            value, time, steps = self._datasets(self._base)
            _extend((value, time), (rho, t))
            commit.append(steps)
            self._last_particle_step = step
        if commit:
            f.flush()
            _extend(commit, [step] * len(commit))
        rec._commit()

    def _initial_array(self):
        return np.asarray(self._start.density, dtype=np.float64)

    def _create(self, f, arrays, step, t, rho, descriptions=None):
        rec = self._rec
        if self._base not in f:
            g = f.require_group("fields").create_group(self.name)
            grid, fl = self._flow.grid, self._flow
            g.attrs["lower"] = np.asarray(grid.lower, dtype=np.float64)
            g.attrs["upper"] = np.asarray(grid.upper, dtype=np.float64)
            g.attrs["cells"] = np.asarray(grid.cells, dtype=np.int64)
            axes = ["a", "w"] if len(grid.cells) == 2 else ["s"]
            g.attrs["axes"] = np.array([a.encode() for a in axes])
            g.attrs["setting"] = "plane" if len(grid.cells) == 2 else "radial"
            g.attrs["description"] = ("cell-average density of the mean-field measure on a uniform grid: value[k] "
                                      "at cell centres lower + (i + 1/2) (upper - lower) / cells, integrating to "
                                      "1 - outflow")
            _series(g, self._shape, np.float64, rec, chunk_rows=1)
            meta = f.require_group("parameters/fields").create_group(self.name)
            problem = fl.problem
            desc = {"kind": type(problem).__name__, "activation": problem.activation,
                    "teacher": None if problem.teacher is None else np.asarray(problem.teacher).tolist()}
            from .pde import RadialProblem  # loaded already: this sink records a PDE flow

            if isinstance(problem, RadialProblem):
                desc.update(d=int(problem.d), a0=float(problem.a0), radial_points=int(problem.R.shape[0]),
                            angular_points=int(problem.u.shape[0]))
            else:
                desc.update(setting=problem.kind, quad_points=int(problem.quad_points))
            meta.attrs["problem"] = _to_json(desc)
            meta.attrs["params"] = _to_json(fl.params.describe())
            meta.attrs["tolerance"] = float(fl.tolerance)
            meta.create_dataset("status", data=np.bytes_(self.status or "running"), dtype=_STATUS_DTYPE)
        _observable_series(f.require_group(self._obs_root), arrays, descriptions, rec)


def _series(g, shape, dtype, rec, chunk_rows):
    """Empty H5MD time-dependent element {step, time, value} under group g.

    Crash safety decides the filters. A chunk of ``chunk_rows == 1`` is written once and never again, so it
    is compressed and checksummed. A chunk of many rows (step, time, scalar observables) is rewritten in
    place each time a row is added; it stays unfiltered, so that rewrite leaves the bytes of the rows
    already committed unchanged and a write torn by a kill cannot damage them (a compressed or checksummed
    chunk would change as a whole, and a filtered chunk is moved when its size changes).
    """
    once = dict(compression=rec._compression[0], compression_opts=rec._compression[1], fletcher32=True)
    g.create_dataset("step", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(_SERIES_CHUNK,),
                     fillvalue=-1)
    g.create_dataset("time", shape=(0,), maxshape=(None,), dtype=np.float64, chunks=(_SERIES_CHUNK,))
    g.create_dataset("value", shape=(0,) + tuple(shape), maxshape=(None,) + tuple(shape), dtype=dtype,
                     chunks=(chunk_rows,) + tuple(max(1, s) for s in shape), **(once if chunk_rows == 1 else {}))


def _extend(datasets, values):
    """Append one row to each dataset (low-level h5py: the high-level ``ds[n] = v`` costs several times more
    per small write)."""
    for ds, v in zip(datasets, values):
        dsid = ds.id
        n = dsid.shape[0]
        row = ds.shape[1:]
        dsid.set_extent((n + 1,) + row)
        fspace = dsid.get_space()
        fspace.select_hyperslab((n,) + (0,) * len(row), (1,) + row)
        arr = np.ascontiguousarray(np.reshape(v, (1,) + row), dtype=ds.dtype)
        dsid.write(h5py.h5s.create_simple((1,) + row), fspace, arr)


class Recorder:
    r"""Write a run into an H5MD 1.1 file as it goes: one file, one sink per flow (:meth:`sink`).

    Parameters
    ----------
    path : str or os.PathLike
        The file. A fresh recorder replaces an existing file (once its first snapshot is complete).
    config : dict, optional
        The complete run configuration (``RunConfig.to_dict()``), stored as JSON and as attributes.
    data : Dataset, optional
        The data set: its recipe (and teacher) is stored, or its arrays when no recipe rebuilds them.
        Default: the problem of the first flow recorded (a population problem stores its teacher).
    seed : int or numpy.random.Generator, optional
        Seed of the initial particles; the generator state is stored as well.
    compression : {"gzip", "lzf", "none"}
    particles_dtype : {"float64", "float32"}
        Storage dtype of the particle snapshots. With float32 (or a subset) the last full float64 state is
        kept in ``/parameters/resume/<flow>`` so a run resumes bitwise.
    particle_subset : int or sequence of int, optional
        Store only these particle indices, or a fixed random subset of this many (drawn with
        ``numpy.random.default_rng(subset_seed)``, sorted). Default: all particles.
    subset_seed : int
    resume : bool
        Open an existing file to continue its run: snapshots whose step is already stored are skipped.
        The file must have been written by a process that is no longer running.
    author : str, optional
        ``/h5md/author`` name (default: the login name).

    Notes
    -----
    Use as ``simulate(flow, theta0, ..., recorder=rec.sink())``, and ``rec.sink("linearized")`` for a second
    flow of the same run; to continue a run, ``state = meanfield.trajectory.last_state(path)`` then
    ``Recorder(path, ..., resume=True)`` and ``simulate(flow, state, n_steps=remaining, recorder=rec.sink())``.
    The recorder is a context manager: leaving it closes every sink still open (``interrupted`` on an exception)
    and the file.

    A SIGKILL at any moment leaves a file that opens with every snapshot flushed before it, for flows of up
    to 2037 snapshots on a local Linux file system (docs/hdf5-format.md, "Crash safety", gives the argument
    and the bound).
    """

    def __init__(self, path, *, config=None, data=None, seed=None, compression="gzip",
                 particles_dtype="float64", particle_subset=None, subset_seed: int = 0, resume: bool = False,
                 author: str | None = None):
        self.path = Path(path)
        comp = check_choice("output.compression", "none" if compression is None else compression, COMPRESSIONS)
        check_choice("output.particles_dtype", particles_dtype, DTYPES)
        if particle_subset is not None and not isinstance(particle_subset, (list, tuple, np.ndarray)):
            check_int("output.particle_subset", particle_subset, low=1,
                      allowed="None, a number of particles >= 1, or a list of particle indices")
        self._compression = COMPRESSIONS[comp]
        self._particles_dtype = DTYPES[particles_dtype]
        self._subset, self._subset_seed = particle_subset, int(subset_seed)
        self._config, self._data, self._author = config, data, author
        if isinstance(seed, np.random.Generator):
            self._seed, self._rng_state = None, seed.bit_generator.state
        elif seed is None:
            self._seed, self._rng_state = None, None
        else:
            self._seed = check_int("seed", seed, low=0, allowed="a non-negative integer or a numpy.random.Generator")
            self._rng_state = np.random.default_rng(self._seed).bit_generator.state
        self._file = None
        self._tmp = None
        self._swmr = False
        self._created = False
        self._cache, self._cache_file = {}, None
        self._sinks = {}
        self._flow_status = {}
        if resume:
            self._open_for_resume()

    # --- public --------------------------------------------------------------------------------------------

    def sink(self, name: str = PRIMARY) -> Sink:
        """The sink of one flow of this run: ``"neurons"`` (the primary flow, ``/particles/neurons`` and
        ``/observables/<observable>``) or another name (``/particles/<name>``,
        ``/observables/<name>/<observable>``)."""
        if not isinstance(name, str) or not name or "/" in name or name == "box":
            raise ConfigError("flow name", name, "a name without '/'")
        if name not in self._sinks:
            self._sinks[name] = Sink(self, name)
        return self._sinks[name]

    def field_sink(self, name: str = "density") -> FieldSink:
        """The sink of a field flow (a PDE density): ``/fields/<name>`` and ``/observables/<observable>``."""
        if not isinstance(name, str) or not name or "/" in name:
            raise ConfigError("field name", name, "a name without '/'")
        key = f"fields/{name}"
        if key not in self._sinks:
            self._sinks[key] = FieldSink(self, name)
        return self._sinks[key]

    def close(self, status: str = "interrupted") -> None:
        """Close every sink still open with ``status``, then the file."""
        for sink in list(self._sinks.values()):
            if sink._active:
                sink.close(status)
        self._close_file()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close("interrupted" if exc_type is not None else "completed")

    # --- file life cycle -----------------------------------------------------------------------------------

    def _subset_ids(self, m):
        s = self._subset
        if s is None:
            return np.arange(m, dtype=np.int64)
        if isinstance(s, (int, np.integer)):
            if s >= m:
                return np.arange(m, dtype=np.int64)
            return np.sort(np.random.default_rng(self._subset_seed).choice(m, int(s), replace=False)).astype(np.int64)
        ids = np.asarray(s)
        if ids.ndim != 1 or ids.size == 0 or not np.issubdtype(ids.dtype, np.integer) or ids.min() < 0 \
                or ids.max() >= m or np.unique(ids).size != ids.size:
            raise ConfigError("output.particle_subset", s, f"distinct particle indices in [0, {m})")
        return np.sort(ids).astype(np.int64)

    def _open_for_resume(self):
        path = self.path
        f = open_file(path)
        try:
            check_layout(f, path)
            status = f["parameters/status"][()].decode().rstrip("\x00 ")
            prov = f["parameters/provenance"].attrs
            pid, host = int(prov.get("pid", -1)), str(prov.get("host", ""))
        finally:
            f.close()
        if status == "running" and host == socket.gethostname() and pid != os.getpid() and pid > 0 \
                and _pid_alive(pid):
            raise FileFormatError(path, f"is still being written by process {pid} on {host}; resume it once "
                                        "that process has stopped")
        # The changes below (provenance attributes, dropping uncommitted rows) are not SWMR writes: they happen
        # on a copy that replaces the file once complete, so a kill now leaves the file intact. Marking the
        # file as created makes _editing take that copy instead of creating a fresh file.
        self._created = True
        with self._editing() as f:
            _trim(f)  # drop rows that were extended but not committed (the step dataset is written last)
            prov = f["parameters/provenance"]
            prov.attrs["resumed"] = _to_json(json.loads(prov.attrs.get("resumed", "[]")) + [
                {"time": _now(), "pid": os.getpid(), "host": socket.gethostname()}])
            prov.attrs["pid"] = np.int64(os.getpid())
            prov.attrs["host"] = socket.gethostname()
            f["parameters/status"][()] = np.bytes_("running")
            f["parameters/end_time"][()] = np.bytes_("")
        self._commit()

    @contextlib.contextmanager
    def _editing(self):
        """Structural changes (new groups/datasets) happen outside SWMR mode, on a copy.

        HDF5 cannot create objects in SWMR mode, and a file open for writing outside SWMR mode can be left
        unreadable by a SIGKILL. So an existing file is copied to ``.<name>.<pid>.partial``, changed there, and
        renamed over the original by :meth:`_commit`: a kill at any moment leaves the original, with every
        snapshot flushed before it, intact.
        """
        if self._file is None and not self._created:
            self._create_file()
        elif self._file is None or self._swmr:
            if self._file is not None:
                self._file.close()
            self._drop_stale_partials()
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.partial")
            shutil.copyfile(self.path, tmp)
            self._tmp, self._swmr = tmp, False
            try:
                clear_status_flags(tmp)  # the flags a killed writer left (the copy is ours alone)
                self._file = h5py.File(tmp, "a", libver="latest")
            except (OSError, FileFormatError) as exc:
                tmp.unlink(missing_ok=True)
                self._tmp = None
                if isinstance(exc, FileFormatError):
                    raise
                raise FileFormatError(self.path, f"cannot be opened for writing ({exc})") from None
        yield self._file
        self._file.flush()

    def _commit(self):
        """Flush; enter SWMR mode; a fresh file is renamed into place once complete."""
        f = self._file
        if not self._swmr:
            f.swmr_mode = True
            self._swmr = True
        f.flush()
        if self._tmp is not None:
            os.replace(self._tmp, self.path)
            self._tmp = None
        self._created = True

    def _ensure_open(self):
        """The open file (reopened in SWMR mode after an earlier flow closed it), or None before creation."""
        if self._file is None and self._created:
            try:
                self._file = h5py.File(self.path, "a", libver="latest")
            except OSError as exc:
                raise FileFormatError(self.path, f"cannot be reopened for writing ({exc})") from None
            self._commit()
        return self._file

    def _drop_stale_partials(self):
        """Remove the ``.<name>.<pid>.partial`` copies that killed writers left."""
        path = self.path
        for old in path.parent.glob(f".{path.name}.*.partial"):
            pid = old.name[len(path.name) + 2 : -len(".partial")]
            if pid.isdigit() and not _pid_alive(int(pid)):
                old.unlink(missing_ok=True)

    def _create_file(self):
        path = self.path
        if not path.parent.is_dir():
            raise FileFormatError(path, f"cannot be created: directory {path.parent} does not exist")
        self._drop_stale_partials()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
        try:
            f = h5py.File(tmp, "w", libver="latest", fs_strategy="page", fs_page_size=PAGE_SIZE)
        except OSError as exc:
            raise FileFormatError(path, f"cannot be created ({exc})") from None
        self._file, self._tmp = f, tmp
        g = f.create_group("h5md")
        g.attrs["version"] = np.array(H5MD_VERSION, dtype=np.int32)
        try:
            author = self._author or getpass.getuser()
        except (KeyError, OSError):
            author = "unknown"
        g.create_group("author").attrs["name"] = author
        c = g.create_group("creator")
        c.attrs["name"] = "meanfield"
        c.attrs["version"] = _meanfield_version()
        f.create_group("particles")
        f.create_group("observables")
        par = f.create_group("parameters")
        par.attrs["format_version"] = np.int32(FORMAT_VERSION)
        if self._seed is not None:
            par.attrs["seed"] = np.int64(self._seed)
        if self._rng_state is not None:
            par.attrs["rng_state"] = _to_json(self._rng_state)
        par.create_dataset("status", data=np.bytes_("running"), dtype=_STATUS_DTYPE)
        par.create_dataset("end_time", data=np.bytes_(""), dtype=_TIME_DTYPE)
        cfg = par.create_group("config")
        cfg.attrs["json"] = _to_json(self._config)
        if isinstance(self._config, dict):
            for table, body in self._config.items():
                if isinstance(body, dict):
                    sub = cfg.create_group(str(table))
                    for k, v in _flatten(body):
                        sub.attrs[k] = _attr_value(_jsonable(v))
                else:
                    cfg.attrs[str(table)] = _attr_value(_jsonable(body))
        self._write_data(par)
        prov = par.create_group("provenance")
        versions = {
            "meanfield": _meanfield_version(), "numpy": np.__version__, "numba": _version("numba"),
            "scipy": _version("scipy"), "pot": _version("pot"), "h5py": h5py.__version__,
            "hdf5": h5py.version.hdf5_version, "python": platform.python_version(),
        }
        for k, v in versions.items():
            prov.attrs[k] = v
        prov.attrs["platform"] = platform.platform()
        prov.attrs["host"] = socket.gethostname()
        prov.attrs["pid"] = np.int64(os.getpid())
        prov.attrs["argv"] = _to_json(sys.argv)
        prov.attrs["start_time"] = _now()

    def _write_data(self, par):
        from .data import Dataset, as_dataset
        from .linearized import Linearization
        from .population import Population

        ds = self._data
        if ds is None and self._sinks:
            ds = next(iter(self._sinks.values()))._flow.problem
        if isinstance(ds, Linearization):
            ds = ds.data
        g = par.create_group("data")
        if ds is None:
            return
        if isinstance(ds, Population):
            g.attrs["name"] = ds.name
            g.attrs["recipe"] = _to_json({"kind": "gaussian_teacher", "activation": ds.activation.name})
            g.attrs["d"] = np.int64(ds.teacher.shape[1] - 2)
            g.attrs["rebuildable"] = False
            g.create_dataset("teacher", data=ds.teacher)
            return
        pde = sys.modules.get(f"{__package__}.pde")  # a PDE problem implies the module is loaded: never import it here
        if pde is not None and isinstance(ds, (pde.PlaneProblem, pde.RadialProblem)):  # PDE on the Gaussian population
            radial = isinstance(ds, pde.RadialProblem)
            g.attrs["name"] = "gaussian_teacher (teacher rings)" if radial else "gaussian_teacher"
            g.attrs["recipe"] = _to_json({"kind": "gaussian_teacher", "activation": ds.activation,
                                          "teacher_rows": "(a*, s*)" if radial else "(a*, w*)"})
            g.attrs["d"] = np.int64(ds.d if radial else 1)
            g.attrs["rebuildable"] = False
            if ds.teacher is not None:
                g.create_dataset("teacher", data=np.asarray(ds.teacher))
            return
        ds = ds if isinstance(ds, Dataset) else as_dataset(ds)
        X, y, X_test, y_test = ds.X, ds.y, ds.X_test, ds.y_test
        ds_name, recipe, teacher = ds.name, ds.recipe, ds.teacher
        g.attrs["name"] = str(ds_name)
        g.attrs["recipe"] = _to_json(recipe)
        X = np.asarray(X)
        g.attrs["n"] = np.int64(X.shape[0])
        g.attrs["d"] = np.int64(X.shape[1] if X.ndim == 2 else 1)
        g.attrs["n_test"] = np.int64(0 if X_test is None else np.asarray(X_test).shape[0])
        rebuildable = isinstance(recipe, dict) and recipe.get("kind") not in (None, "arrays")
        g.attrs["rebuildable"] = bool(rebuildable)
        opts = dict(compression=self._compression[0], compression_opts=self._compression[1])
        if teacher is not None:
            g.create_dataset("teacher", data=np.asarray(teacher))
        if not rebuildable:
            for key, arr in (("X", X), ("y", y), ("X_test", X_test), ("y_test", y_test)):
                if arr is not None:
                    arr = np.asarray(arr)
                    g.create_dataset(key, data=arr, **(opts if arr.size > 1 else {}))

    def _set_status(self, name, status):
        self._flow_status[name] = status
        f = self._file
        if f is None:
            return
        key = f"parameters/flows/{name}/status"
        if key in f:
            f[key][()] = np.bytes_(status)
        f["parameters/status"][()] = np.bytes_(self._file_status())

    def _file_status(self):
        active = [s for s in self._sinks.values() if s._active]
        if active:
            return "running"
        known = set(self._flow_status.values())
        for s in ("interrupted", "diverged", "completed"):
            if s in known:
                return s
        return "completed"

    def _sink_closed(self, sink, status):
        self._flow_status[sink.name] = status
        if self._file is None:
            if sink._flow is None:
                return
            # Closed before any snapshot: still leave a file saying what happened.
            st = sink._start
            with self._editing() as f:
                sink._create(f, {}, int(st.step), float(st.t), sink._initial_array())
            self._commit()
        f = self._ensure_open()
        if _ragged(f):  # interrupted inside append(): drop the uncommitted row
            with self._editing() as f:
                _trim(f)
            self._commit()
            f = self._file
        key = f"{sink._meta}/status"
        if key in f:
            f[key][()] = np.bytes_(status)
        f["parameters/status"][()] = np.bytes_(self._file_status())
        if not any(s._active for s in self._sinks.values()):
            f["parameters/end_time"][()] = np.bytes_(_now())
            f.flush()
            self._close_file()
        else:
            f.flush()

    def _close_file(self):
        if self._file is not None:
            try:
                self._file.close()
            finally:
                self._file = None
                self._swmr = False
        if self._tmp is not None and self._tmp.exists():
            self._tmp.unlink()
            self._tmp = None


def _ragged(f) -> bool:
    """Whether some element holds an uncommitted row."""
    return any(len({obj[k].shape[0] for k in ("step", "time", "value")} | {committed(obj)}) > 1
               for obj in _elements(f))


def _trim(f) -> None:
    """Cut every element to its committed rows (outside SWMR mode)."""
    for obj in _elements(f):
        n = committed(obj)
        for key in ("step", "time", "value"):
            if obj[key].shape[0] != n:
                obj[key].resize(n, axis=0)


def _elements(f):
    """Every time-dependent element {step, time, value} in the file."""
    found = []

    def visit(name, obj):
        if isinstance(obj, h5py.Group) and {"step", "time", "value"} <= set(obj) and \
                isinstance(obj["step"], h5py.Dataset) and obj["step"].shape and obj["step"].maxshape[0] is None:
            found.append(obj)

    f.visititems(visit)
    return found
