r"""Read trajectories written by :class:`meanfield.h5md.Recorder`: ``load(path)`` returns a :class:`Trajectory`.

A trajectory holds the snapshot times, every observable as a ``(step, time, value)`` series, and the particle
snapshots as a lazy :class:`Particles` view: ``traj.particles[i]`` or ``traj.particles[i, ids]`` reads that
hyperslab only, never the whole file. Files still being written (SWMR) or left by a killed run open too; they
show status ``running``. A file that is not a readable meanfield trajectory (missing, truncated, corrupted,
missing groups, foreign HDF5, newer format) raises :class:`~meanfield.errors.FileFormatError` naming the file
and the problem. The layout is described in docs/hdf5-format.md::

    traj = meanfield.load("run.h5")
    traj.times                          # (T,) snapshot times of the particles
    traj.observables["train_loss"]      # Series(step (T,), time (T,), value (T,))
    traj.particles[-1]                  # (m, p) last snapshot, read on demand
    traj.flow("linearized")             # a second flow of the same run
    traj.fields["density"][-1]          # a PDE run (meanfield.pde): the last density snapshot, shape cells

A PDE run's file has no particles: ``traj.flows`` is empty, ``traj.particles`` is None, ``traj.times`` are the
observables' snapshot times, and the density snapshots are the lazy :class:`Field` ``traj.fields["density"]``
(also ``traj.field("density")``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np

from ._hdf5 import (PRIMARY, attr_text, check_layout, committed, field_names, flow_names, guard, open_file,
                    text)
from .errors import FileFormatError

__all__ = ["load", "info", "verify", "last_state", "first_state", "Trajectory", "FlowTrajectory", "Particles", "Series",
           "Field"]

# ----------------------------------------------------------------------------------------------------------
# the trajectory objects


class Series(NamedTuple):
    """One recorded observable: ``value[i]`` was measured at ``step[i]``, time ``time[i]``."""

    step: np.ndarray
    time: np.ndarray
    value: np.ndarray


def _normalise(key, n, what):
    """int / slice / integer sequence -> (h5py selection, permutation to apply after reading, scalar?)."""
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        k = int(key)
        if not -n <= k < n:
            raise IndexError(f"{what} index {k} is out of range for {n} {what}s")
        return k % n, None, True
    if isinstance(key, slice):
        start, stop, step = key.indices(n)
        if step > 0:
            return slice(start, stop, step), None, False
        key = np.arange(start, stop, step)  # h5py reads forward only: read sorted, then reorder
    idx = np.asarray(key)
    if idx.size == 0:
        idx = idx.astype(np.int64)
    if idx.dtype == bool:
        if idx.shape != (n,):
            raise IndexError(f"boolean {what} mask of shape {idx.shape} does not match {n} {what}s")
        idx = np.flatnonzero(idx)
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
        raise IndexError(f"{what} index must be an int, a slice or a 1-D integer array, not {key!r}")
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"{what} index out of range for {n} {what}s")
    idx = idx % n if n else idx
    uniq, inverse = np.unique(idx, return_inverse=True)
    return uniq, inverse, False


class Particles:
    """Lazy particle snapshots of one flow: index it to read only what is asked for.

    ``particles[i]`` -> (m_s, p) snapshot i; ``particles[a:b]`` -> (k, m_s, p); ``particles[i, j]`` -> particle
    row(s) j of snapshot(s) i (j indexes the stored particles, whose original indices are ``ids``);
    ``particles.read()`` loads everything. Values are returned as float64.

    Attributes
    ----------
    steps, times : ndarray, shape (T,)
    ids : ndarray, shape (m_s,)
        Indices, in the full particle array (m, p), of the stored particles (all of them unless a subset
        was recorded).
    shape : tuple (T, m_s, p)
    dtype : numpy.dtype
        Storage dtype (float64 or float32).
    """

    def __init__(self, path, dataset, steps, times, ids):
        self._path, self._ds = path, dataset
        self.steps, self.times, self.ids = steps, times, ids
        self.shape = (len(steps),) + tuple(dataset.shape[1:])
        self.dtype = dataset.dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"<Particles {self.shape} stored as {self.dtype}>"

    def read(self) -> np.ndarray:
        """All snapshots, shape (T, m_s, p)."""
        return self[:]

    def __getitem__(self, key) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        if len(key) > 2:
            raise IndexError("index particles as [snapshots] or [snapshots, particles]")
        T, m = self.shape[0], self.shape[1]
        s_sel, s_perm, _ = _normalise(key[0], T, "snapshot")
        if len(key) == 2:
            j_sel, j_perm, _ = _normalise(key[1], m, "particle")
        else:
            j_sel, j_perm = slice(0, m), None
        with guard(self._path, f"particle snapshots of {self._ds.name}"):
            if isinstance(s_sel, np.ndarray) and isinstance(j_sel, np.ndarray):
                out = np.stack([self._ds[int(i), j_sel, :] for i in s_sel]) if s_sel.size else \
                    np.empty((0, j_sel.size, self.shape[2]), dtype=self.dtype)
            elif isinstance(s_sel, np.ndarray) and s_sel.size == 0:
                out = np.empty((0,) + self._ds[0:0, j_sel, :].shape[1:], dtype=self.dtype)
            elif isinstance(j_sel, np.ndarray) and j_sel.size == 0:
                out = self._ds[s_sel, 0:0, :]
            else:
                out = self._ds[s_sel, j_sel, :]
        out = np.asarray(out, dtype=np.float64)
        if j_perm is not None:
            out = np.take(out, j_perm, axis=-2)
        if s_perm is not None:
            out = np.take(out, s_perm, axis=0)
        return out


class Field:
    """Lazy snapshots of a field recorded in ``/fields/<name>`` (the density of a PDE run): index it to read only
    what is asked for.

    ``field[i]`` -> snapshot i, shape ``cells``; ``field[a:b]`` -> ``(k, *cells)``; ``field[i, j]`` -> row j of
    snapshot i (further indices act on the grid axes); ``field.read()`` loads everything (float64).

    Attributes
    ----------
    name : str
    steps, times : ndarray, shape (T,)
    shape : tuple ``(T, *cells)``
    lower, upper : ndarray, shape (p,)
        Corners of the grid (plane: (a, w); radial: (0,), (s_max,)).
    cells : tuple of int
    axes : tuple of str
        Names of the grid axes (``("a", "w")`` or ``("s",)``).
    attrs : dict
        Every attribute of ``/fields/<name>`` (``setting``, ``description``, ...).
    """

    def __init__(self, path, group, name):
        self._path, self.name = path, name
        self._ds = group["value"]
        T = committed(group)
        self.steps = np.asarray(group["step"][:T], dtype=np.int64)
        self.times = np.asarray(group["time"][:T], dtype=np.float64)
        self.attrs = {k: (attr_text(v) if isinstance(v, (str, bytes)) else v) for k, v in group.attrs.items()}
        self.lower = np.asarray(group.attrs["lower"], dtype=np.float64)
        self.upper = np.asarray(group.attrs["upper"], dtype=np.float64)
        self.cells = tuple(int(c) for c in np.asarray(group.attrs["cells"]).reshape(-1))
        self.axes = tuple(attr_text(a) for a in np.asarray(group.attrs.get("axes", [])).reshape(-1))
        self.shape = (T,) + tuple(self._ds.shape[1:])
        self.dtype = self._ds.dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"<Field {self.name!r} {self.shape} on [{self.lower.tolist()}, {self.upper.tolist()}]>"

    def centres(self, dim: int) -> np.ndarray:
        """Cell centres along grid axis ``dim``."""
        f = np.linspace(self.lower[dim], self.upper[dim], self.cells[dim] + 1)
        return 0.5 * (f[1:] + f[:-1])

    @property
    def cell_volume(self) -> float:
        return float(np.prod((self.upper - self.lower) / np.asarray(self.cells)))

    def read(self) -> np.ndarray:
        """All snapshots, shape ``(T, *cells)``."""
        return self[:]

    def __getitem__(self, key) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        T = self.shape[0]
        s_sel, s_perm, _ = _normalise(key[0], T, "snapshot")
        with guard(self._path, f"field snapshots of {self._ds.name}"):
            if isinstance(s_sel, np.ndarray):
                out = np.stack([self._ds[int(i)] for i in s_sel]) if s_sel.size else \
                    np.empty((0,) + self.shape[1:], dtype=self.dtype)
            else:
                out = self._ds[s_sel]
        out = np.asarray(out, dtype=np.float64)
        if s_perm is not None:
            out = np.take(out, s_perm, axis=0)
        rest = key[1:]
        if rest:
            out = out[(slice(None),) * (out.ndim - len(self.cells)) + rest] if out.ndim > len(self.cells) \
                else out[rest]
        return out


def _read_observables(f, obs_root) -> dict:
    out = {}
    if obs_root in f:
        for key, grp in f[obs_root].items():
            if isinstance(grp, h5py.Group) and {"step", "time", "value"} <= set(grp):
                n = committed(grp)
                out[key] = Series(np.asarray(grp["step"][:n], dtype=np.int64),
                                  np.asarray(grp["time"][:n], dtype=np.float64), grp["value"][:n])
    return out


class FlowTrajectory:
    """One flow of a run: its particle snapshots (lazy), observables, model and dynamics.

    Attributes
    ----------
    name : str
        The particles group (``"neurons"`` for the primary flow).
    particles : Particles
    observables : dict of str to Series
    status : str
        This flow's own status.
    model, dynamics : dict
        ``Model.describe()`` and ``Dynamics.describe()`` of the flow.
    """

    def __init__(self, f, path, name):
        self._f, self.path, self.name = f, Path(path), name
        with guard(path, f"/particles/{name}"):
            base = f["particles"][name]
            pos = base["position"]
            T = committed(pos)
            steps = np.asarray(pos["step"][:T], dtype=np.int64)
            times = np.asarray(pos["time"][:T], dtype=np.float64)
            m_s = pos["value"].shape[1]
            ids = np.asarray(base["id"][:], dtype=np.int64) if "id" in base else np.arange(m_s)
            self.particles = Particles(path, pos["value"], steps, times, ids)
            obs_root = "observables" if name == PRIMARY else f"observables/{name}"
            self.observables = _read_observables(f, obs_root)
            meta = f["parameters"]["flows"][name] if "flows" in f["parameters"] and name in f["parameters/flows"] \
                else None
            self.model = json.loads(attr_text(meta.attrs["model"])) if meta is not None and "model" in meta.attrs \
                else {}
            self.dynamics = json.loads(attr_text(meta.attrs["dynamics"])) \
                if meta is not None and "dynamics" in meta.attrs else {}
            self.status = text(meta["status"]) if meta is not None and "status" in meta else text(
                f["parameters/status"])
            self.m = int(meta.attrs["m"]) if meta is not None and "m" in meta.attrs else m_s

    @property
    def steps(self) -> np.ndarray:
        """Step numbers of the particle snapshots, shape (T,) (a file without particles: of the observables)."""
        if self.particles is None:
            return self._snapshots()[0]
        return self.particles.steps

    @property
    def times(self) -> np.ndarray:
        """Times of the particle snapshots, shape (T,) (a file without particles: of the observables)."""
        if self.particles is None:
            return self._snapshots()[1]
        return self.particles.times

    def _snapshots(self):
        longest = max(self.observables.values(), key=lambda s: len(s.step), default=None)
        if longest is None:
            return np.empty(0, dtype=np.int64), np.empty(0)
        return longest.step, longest.time

    def _resume_record(self):
        key = f"parameters/resume/{self.name}"
        if key not in self._f:
            return None
        return self._f[key]

    def last_state(self):
        """The last recorded state at full float64 precision (``FlowState(step, t, theta (m, p))``)."""
        from .flow import FlowState

        self._need_particles()

        with guard(self.path, f"the resume state of flow {self.name!r}"):
            rec = self._resume_record()
            if rec is not None:
                steps = np.asarray(rec["step"][:])
                if steps.max() >= 0:
                    k = int(np.argmax(steps))
                    return FlowState(int(steps[k]), float(rec["time"][k]), np.array(rec["theta"][k], dtype=np.float64))
        self._need_full("resume")
        if len(self.particles) == 0:
            raise FileFormatError(self.path, f"has no snapshot of flow {self.name!r} to continue from")
        return FlowState(int(self.steps[-1]), float(self.times[-1]), self.particles[-1])

    def first_state(self):
        """The first recorded state (normally step 0) at full float64 precision: the observers' reference."""
        from .flow import FlowState

        self._need_particles()

        with guard(self.path, f"the initial state of flow {self.name!r}"):
            rec = self._resume_record()
            if rec is not None and "theta0" in rec:
                return FlowState(int(rec.attrs["step0"]), float(rec.attrs["time0"]),
                                 np.array(rec["theta0"][:], dtype=np.float64))
        self._need_full("recover the initial state of")
        if len(self.particles) == 0:
            raise FileFormatError(self.path, f"has no snapshot of flow {self.name!r}")
        return FlowState(int(self.steps[0]), float(self.times[0]), self.particles[0])

    def _need_particles(self):
        if self.particles is None:
            raise FileFormatError(self.path, "has no particles (a PDE run: its density is in traj.fields)")

    def _need_full(self, verb):
        if self.particles.dtype != np.float64 or self.particles.shape[1] != self.m:
            raise FileFormatError(self.path, f"cannot {verb} flow {self.name!r}: its particles are stored as "
                                             f"{self.particles.dtype} / a subset and no full-precision record "
                                             "is in /parameters/resume")

    def __repr__(self) -> str:
        return f"<FlowTrajectory {self.name!r}: {len(self.times)} snapshots, {self.status}>"


class Trajectory(FlowTrajectory):
    """A trajectory file: the primary flow (``/particles/neurons``) plus the run's parameters.

    Use it as a context manager, or call :meth:`close`, to release the file.

    Attributes
    ----------
    path : pathlib.Path
    status : str
        ``running`` (being written, or the writer was killed), ``completed``, ``diverged`` or ``interrupted``.
    flows : tuple of str
        Names of the particles groups; :meth:`flow` opens one (empty for a PDE run).
    fields : dict of str to Field
        The fields under ``/fields`` (a PDE run: ``"density"``), lazy; :meth:`field` returns one.
    config : dict or None
        The run configuration (``RunConfig.to_dict()``) as recorded.
    data : dict
        ``name``, ``recipe`` (dict, rebuild with ``meanfield.data.from_recipe``), ``n``, ``d``, ``n_test``,
        and ``arrays`` (dict of X, y, X_test, y_test) when the data could not be rebuilt from a recipe.
    seed : int or None
        The seed of the initial particles; ``rng_state`` holds the generator state it produced.
    provenance : dict
        Versions (meanfield, numpy, numba, scipy, pot, h5py, hdf5, python), host, pid, start_time.
    start_time, end_time : str
        ISO 8601 (UTC); end_time is empty while running.
    """

    def __init__(self, path):
        path = Path(path)
        f = open_file(path)
        try:
            check_layout(f, path)
            with guard(path, "/parameters"):
                params = f["parameters"]
                self.flows = flow_names(f, path)
                self._file_status = text(params["status"])
                self.end_time = text(params["end_time"]) if "end_time" in params else ""
                self.config = json.loads(attr_text(params["config"].attrs["json"])) if "config" in params else None
                self.seed = int(params.attrs["seed"]) if "seed" in params.attrs else None
                self.rng_state = json.loads(attr_text(params.attrs["rng_state"])) \
                    if "rng_state" in params.attrs else None
                prov = params["provenance"].attrs if "provenance" in params else {}
                self.provenance = {k: attr_text(v) for k, v in prov.items()}
                self.start_time = self.provenance.get("start_time", "")
                self.data = {}
                if "data" in params:
                    dg = params["data"]
                    self.data = {k: (json.loads(attr_text(v)) if k == "recipe" else
                                     (attr_text(v) if isinstance(v, (str, bytes)) else v.item()
                                      if isinstance(v, np.generic) else v))
                                 for k, v in dg.attrs.items()}
                    arrays = {k: dg[k][:] for k in ("X", "y", "X_test", "y_test", "teacher") if k in dg}
                    if "teacher" in arrays:
                        self.data["teacher"] = arrays.pop("teacher")
                    if arrays:
                        self.data["arrays"] = arrays
            with guard(path, "/fields"):
                self.fields = {name: Field(path, f["fields"][name], name) for name in field_names(f, path)}
            if PRIMARY in self.flows:
                FlowTrajectory.__init__(self, f, path, PRIMARY)
            else:  # a field run (PDE): observables at the root, no particles
                self._f, self.path, self.name = f, path, None
                self.particles, self.model, self.dynamics, self.m = None, {}, {}, 0
                with guard(path, "/observables"):
                    self.observables = _read_observables(f, "observables")
            self.status = self._file_status
        except BaseException:
            f.close()
            raise

    def field(self, name: str = "density") -> Field:
        """A field of the run (``"density"`` for a PDE run), read lazily."""
        if name not in self.fields:
            raise FileFormatError(self.path, f"has no field {name!r} (fields: {', '.join(self.fields) or 'none'})")
        return self.fields[name]

    def flow(self, name: str) -> FlowTrajectory:
        """Another flow of the same run (``"linearized"``, ...), or the primary one (``"neurons"``)."""
        if name not in self.flows:
            raise FileFormatError(self.path, f"has no flow {name!r} (flows: {', '.join(self.flows)})")
        if name == PRIMARY:
            return self
        return FlowTrajectory(self._f, self.path, name)

    def close(self) -> None:
        """Close the file (lazy particle views stop working)."""
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"<Trajectory {str(self.path)!r}: {self.status}, flows {', '.join(self.flows)}>"


def load(path) -> Trajectory:
    """Open a trajectory file written by :class:`meanfield.h5md.Recorder`.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    Trajectory
        Times and observables are read now; particle snapshots are read on indexing.

    Raises
    ------
    FileFormatError
        If the file is missing, truncated, corrupted, lacks a required group, is a foreign HDF5 file or uses
        a newer format version; the message names the file and the problem.
    """
    return Trajectory(path)


def last_state(path, flow: str = PRIMARY):
    """The last recorded state of a flow at full float64 precision, to continue the run from.

    Returns
    -------
    FlowState
        ``(step, t, theta)`` with theta of shape (m, p), float64.
    """
    with load(path) as traj:
        return traj.flow(flow).last_state()


def first_state(path, flow: str = PRIMARY):
    """The first recorded state (step 0 of a fresh run) at full float64 precision."""
    with load(path) as traj:
        return traj.flow(flow).first_state()


def _fmt(v) -> str:
    a = np.asarray(v)
    if a.ndim == 0:
        return f"{a.item():.6g}" if np.issubdtype(a.dtype, np.floating) else str(a.item())
    return f"array {a.shape}"


def verify(path) -> list:
    """Read every stored chunk of a trajectory file, checking the Fletcher-32 checksum of each filtered one.

    Particle snapshots and array observables are stored with checksums (docs/hdf5-format.md); HDF5 checks the
    metadata's own checksums when the file is opened. A chunk whose bytes were damaged after it was written
    fails here.

    Returns
    -------
    list of str
        One line per damaged dataset (empty when every checksum holds).
    """
    problems = []
    with load(path) as traj:
        f = traj._f

        def visit(name, obj):
            if not isinstance(obj, h5py.Dataset) or obj.shape == () or 0 in obj.shape:
                return
            sel = None
            try:
                if obj.chunks is None:
                    obj[...]
                    return
                for sel in obj.iter_chunks():
                    obj[sel]
            except (OSError, RuntimeError, ValueError) as exc:
                where = f" (chunk at row {sel[0].start})" if sel else ""
                problems.append(f"/{name}{where} fails its checksum or cannot be read "
                                f"({str(exc).splitlines()[0][:120]})")

        f.visititems(visit)
    return problems


def info(path, damaged=None) -> str:
    """A short human summary of a trajectory file (what ``meanfield info FILE`` prints), after
    :func:`verify` (or with its result, ``damaged``): a damaged file says so on its first line."""
    damaged = verify(path) if damaged is None else damaged
    with load(path) as traj:
        state = f"DAMAGED ({len(damaged)} dataset{'s' if len(damaged) > 1 else ''} unreadable), recorded as " \
            f"{traj.status}" if damaged else traj.status
        lines = [f"{traj.path}: status {state}", *(f"  damaged: {p}" for p in damaged),
                 f"  meanfield {traj.provenance.get('meanfield', '?')}, started {traj.start_time or '?'}"
                 + (f", ended {traj.end_time}" if traj.end_time else "")]
        if traj.data:
            lines.append(f"  data {traj.data.get('name', '?')}: n = {traj.data.get('n', '?')}, "
                         f"d = {traj.data.get('d', '?')}, n_test = {traj.data.get('n_test', '?')}")
        for name, fd in traj.fields.items():
            T = len(fd)
            span = f"t = {fd.times[0]:.6g} .. {fd.times[-1]:.6g} (steps {fd.steps[0]} .. {fd.steps[-1]})" \
                if T else "no snapshots yet"
            box = " x ".join(f"{ax} in [{lo:.4g}, {hi:.4g}]" for ax, lo, hi in zip(fd.axes, fd.lower, fd.upper))
            lines.append(f"  field {name} ({fd.attrs.get('setting', '?')}): {T} snapshots, {span}; "
                         f"{' x '.join(map(str, fd.cells))} cells, {box}")
        if not traj.flows:
            for key, s in traj.observables.items():
                last = f"{_fmt(s.value[-1])} at t = {s.time[-1]:.6g}" if len(s.step) else "none yet"
                lines.append(f"    {key}: {last}")
        for name in traj.flows:
            fl = traj.flow(name)
            P = fl.particles
            T = len(P)
            span = f"t = {fl.times[0]:.6g} .. {fl.times[-1]:.6g} (steps {fl.steps[0]} .. {fl.steps[-1]})" \
                if T else "no snapshots yet"
            kept = "all" if P.shape[1] == fl.m else f"subset of {P.shape[1]}"
            lines.append(f"  flow {name} [{fl.status}]: {T} snapshots, {span}; m = {fl.m} ({kept} stored as "
                         f"{P.dtype}), p = {P.shape[2]}")
            for key, s in fl.observables.items():
                last = f"{_fmt(s.value[-1])} at t = {s.time[-1]:.6g}" if len(s.step) else "none yet"
                lines.append(f"    {key}: {last}")
        return "\n".join(lines)
