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
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np

from .errors import FileFormatError

__all__ = ["load", "info", "last_state", "first_state", "Trajectory", "FlowTrajectory", "Particles", "Series"]

#: Name of the particles group of the primary flow.
PRIMARY = "neurons"
#: H5MD version written and the newest one read.
H5MD_VERSION = (1, 1)
#: Version of meanfield's own layout (``/parameters`` attribute ``format_version``).
FORMAT_VERSION = 1
#: Values of ``/parameters/status``.
STATUSES = ("running", "completed", "diverged", "interrupted")

_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_M32 = 0xFFFFFFFF


# ----------------------------------------------------------------------------------------------------------
# superblock: truncation check (before HDF5 sees the file) and clearing the "open for writing" flags


def _rot(x, k):
    return ((x << k) | (x >> (32 - k))) & _M32


def _lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``, the checksum of HDF5 metadata (``H5_checksum_lookup3``)."""
    n = len(data)
    a = b = c = (0xDEADBEEF + n + initval) & _M32
    i = 0
    while n > 12:
        a = (a + int.from_bytes(data[i : i + 4], "little")) & _M32
        b = (b + int.from_bytes(data[i + 4 : i + 8], "little")) & _M32
        c = (c + int.from_bytes(data[i + 8 : i + 12], "little")) & _M32
        a = (a - c) & _M32; a ^= _rot(c, 4); c = (c + b) & _M32  # noqa: E702
        b = (b - a) & _M32; b ^= _rot(a, 6); a = (a + c) & _M32  # noqa: E702
        c = (c - b) & _M32; c ^= _rot(b, 8); b = (b + a) & _M32  # noqa: E702
        a = (a - c) & _M32; a ^= _rot(c, 16); c = (c + b) & _M32  # noqa: E702
        b = (b - a) & _M32; b ^= _rot(a, 19); a = (a + c) & _M32  # noqa: E702
        c = (c - b) & _M32; c ^= _rot(b, 4); b = (b + a) & _M32  # noqa: E702
        n -= 12
        i += 12
    if n == 0:
        return c
    tail = data[i:] + bytes(12 - n)
    a = (a + int.from_bytes(tail[0:4], "little")) & _M32
    b = (b + int.from_bytes(tail[4:8], "little")) & _M32
    c = (c + int.from_bytes(tail[8:12], "little")) & _M32
    c ^= b; c = (c - _rot(b, 14)) & _M32  # noqa: E702
    a ^= c; a = (a - _rot(c, 11)) & _M32  # noqa: E702
    b ^= a; b = (b - _rot(a, 25)) & _M32  # noqa: E702
    c ^= b; c = (c - _rot(b, 16)) & _M32  # noqa: E702
    a ^= c; a = (a - _rot(c, 4)) & _M32  # noqa: E702
    b ^= a; b = (b - _rot(a, 14)) & _M32  # noqa: E702
    c ^= b; c = (c - _rot(b, 24)) & _M32  # noqa: E702
    return c


class _Superblock(NamedTuple):
    offset: int      # where the signature is
    version: int
    flags: int       # file consistency flags (v2/v3; nonzero while open for writing, or after a kill)
    eof: int         # bytes the file must have (base address + end-of-file address)
    checksum_ok: bool
    size: int        # bytes on disk


def _superblock(path: Path) -> _Superblock:
    """Parse the HDF5 superblock; FileFormatError when there is none."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        offset = 0
        while offset + 8 <= size:
            fh.seek(offset)
            if fh.read(8) == _SIGNATURE:
                break
            offset = 512 if offset == 0 else 2 * offset
        else:
            if size == 0:
                raise FileFormatError(path, "is empty (0 bytes), not an HDF5 file")
            raise FileFormatError(path, "is not an HDF5 file (no HDF5 signature)")
        fh.seek(offset)
        head = fh.read(256)
    version = head[8]
    if version in (0, 1):
        so, sl = head[13], head[14]
        start = 24 + (4 if version == 1 else 0)
        flags, ok = 0, True
    elif version in (2, 3):
        so, sl, flags = head[9], head[10], head[11]
        start = 12
        ok = None
    else:
        raise FileFormatError(path, f"has an HDF5 superblock of unknown version {version} (corrupted?)")
    if so not in (2, 4, 8, 16) or sl not in (2, 4, 8, 16):
        raise FileFormatError(path, "is corrupted: its HDF5 superblock has invalid field sizes")
    fmt = {2: "<H", 4: "<I", 8: "<Q", 16: None}[so]
    if fmt is None or len(head) < start + 4 * so + 4:
        raise FileFormatError(path, "is truncated or corrupted: incomplete HDF5 superblock")
    addrs = [struct.unpack(fmt, head[start + k * so : start + (k + 1) * so])[0] for k in range(4)]
    base, eof = addrs[0], addrs[2]
    if version in (2, 3):
        body = head[: start + 4 * so]
        stored = struct.unpack("<I", head[start + 4 * so : start + 4 * so + 4])[0]
        ok = _lookup3(body) == stored
    return _Superblock(offset, version, flags, base + eof, ok, size)


def _clear_status_flags(path) -> bool:
    """Make a file left by a killed writer writable again (what ``h5clear -s --increment=0`` does).

    Clears the superblock's "open for writing" flags and raises its end-of-allocation address to the file's
    size: a writer killed in SWMR mode can leave objects allocated past the recorded address. A file shorter
    than that address (pages allocated, their tail not yet written) is padded with zeros up to it. Returns
    True when the superblock was changed. Only call this when no process is writing the file.
    """
    path = Path(path)
    sb = _superblock(path)
    if sb.version < 2 or sb.flags == 0:
        return False
    if not sb.checksum_ok:
        raise FileFormatError(path, "is corrupted: the checksum of its HDF5 superblock does not match")
    fd = os.open(path, os.O_RDWR)
    try:
        head = bytearray(os.pread(fd, 256, sb.offset))
        so = head[9]
        fmt = {2: "<H", 4: "<I", 8: "<Q"}[so]
        n = 12 + 4 * so
        base = struct.unpack(fmt, bytes(head[12 : 12 + so]))[0]
        eoa = struct.unpack(fmt, bytes(head[12 + 2 * so : 12 + 3 * so]))[0]
        if sb.size < sb.eof:
            os.ftruncate(fd, sb.eof)
        head[12 + 2 * so : 12 + 3 * so] = struct.pack(fmt, max(eoa, sb.size - base))
        head[11] = 0
        head[n : n + 4] = struct.pack("<I", _lookup3(bytes(head[:n])))
        os.pwrite(fd, bytes(head[: n + 4]), sb.offset)  # one write of 48 bytes: a kill leaves old or new
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


# ----------------------------------------------------------------------------------------------------------
# opening and checking


@contextlib.contextmanager
def _guard(path, what: str):
    """Turn h5py/HDF5 failures while reading ``what`` into FileFormatError naming the file."""
    try:
        yield
    except FileFormatError:
        raise
    except (OSError, KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise FileFormatError(path, f"is corrupted: HDF5 could not read {what} ({_hdf5_reason(exc)})") from None


def _hdf5_reason(exc) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


def open_file(path) -> h5py.File:
    """Open a trajectory file read-only (SWMR when it is being written or was left by a killed writer).

    Raises FileFormatError when it is missing, not HDF5, truncated or unreadable. The layout is not checked.
    """
    path = Path(path)
    if not path.exists():
        raise FileFormatError(path, "no such file")
    if path.is_dir():
        raise FileFormatError(path, "is a directory, not a trajectory file")
    sb = _superblock(path)
    # A file open for writing (or left by a killed writer: its flags are still set) may end before the address
    # its superblock records: HDF5 allocates whole pages and writes their tail later. Only a closed file must
    # have all its bytes.
    if sb.size < sb.eof and not sb.flags:
        raise FileFormatError(
            path, f"is truncated: {sb.size} bytes on disk, but its HDF5 superblock records {sb.eof} bytes")
    if sb.checksum_ok is False:
        raise FileFormatError(path, "is corrupted: the checksum of its HDF5 superblock does not match")
    try:
        if sb.flags:  # being written, or its writer was killed: SWMR read
            return _open_swmr(path)
        return h5py.File(path, "r")
    except (OSError, RuntimeError) as exc:
        reason = _hdf5_reason(exc)
        if "signature" in reason:
            raise FileFormatError(path, "is not an HDF5 file (no HDF5 signature)") from None
        if "truncated" in reason:
            raise FileFormatError(path, f"is truncated ({reason})") from None
        if "lock" in reason:
            raise FileFormatError(path, f"is locked by another process ({reason})") from None
        raise FileFormatError(path, f"is corrupted or unreadable ({reason})") from None


#: Metadata read attempts of a SWMR reader. HDF5's default (100, with growing pauses) makes a corrupted file
#: of a killed writer look like a hang; a few attempts still ride out a writer that is mid-flush.
SWMR_READ_ATTEMPTS = 12


def _hdf5_library():
    """ctypes handle of the libhdf5 that h5py uses (the one mapped into this process), or None."""
    import ctypes

    try:
        with open("/proc/self/maps") as fh:
            for line in fh:
                name = line.split()[-1] if line.split() else ""
                if "libhdf5" in os.path.basename(name) and "_hl" not in os.path.basename(name):
                    lib = ctypes.CDLL(name)
                    lib.H5Pset_metadata_read_attempts.argtypes = [ctypes.c_int64, ctypes.c_uint]
                    return lib
    except (OSError, AttributeError):
        pass
    return None


def _open_swmr(path) -> h5py.File:
    lib = _hdf5_library()
    if lib is None:
        return h5py.File(path, "r", libver="latest", swmr=True)
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
    fapl.set_fclose_degree(h5py.h5f.CLOSE_STRONG)
    if lib.H5Pset_metadata_read_attempts(fapl.id, SWMR_READ_ATTEMPTS) < 0:
        return h5py.File(path, "r", libver="latest", swmr=True)
    fid = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDONLY | h5py.h5f.ACC_SWMR_READ, fapl=fapl)
    return h5py.File(fid)


def _attr_text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _attr_text(value[()])
    return str(value)


def _text(ds) -> str:
    return _attr_text(ds[()]).rstrip("\x00 ")


def _require(f, path, name, kind=None):
    with _guard(path, "/" + name):
        if name not in f:
            raise FileFormatError(path, f"is not a complete meanfield trajectory: /{name} is missing")
        obj = f[name]
    if kind is not None and not isinstance(obj, kind):
        want = "group" if kind is h5py.Group else "dataset"
        raise FileFormatError(path, f"is not a valid meanfield trajectory: /{name} is not a {want}")
    return obj


def check_layout(f: h5py.File, path) -> None:
    """Check that an open file is a meanfield H5MD trajectory this version can read (FileFormatError if not)."""
    with _guard(path, "the root group"):
        has_h5md = "h5md" in f
    if not has_h5md:
        raise FileFormatError(path, "is not an H5MD file: it has no /h5md group (a foreign HDF5 file?)")
    h5md = _require(f, path, "h5md", h5py.Group)
    with _guard(path, "/h5md"):
        version = h5md.attrs.get("version")
        creator = h5md["creator"].attrs.get("name") if "creator" in h5md else None
        creator_version = h5md["creator"].attrs.get("version") if "creator" in h5md else None
    try:
        major, minor = (int(v) for v in np.asarray(version).reshape(-1))
    except (TypeError, ValueError):
        raise FileFormatError(
            path, f"is not a valid H5MD file: /h5md version is {version!r}, not [major, minor]") from None
    if (major, minor) > H5MD_VERSION:
        raise FileFormatError(
            path, f"uses H5MD version {major}.{minor}, newer than {H5MD_VERSION[0]}.{H5MD_VERSION[1]} "
                  "which this meanfield reads; upgrade meanfield")
    if major != H5MD_VERSION[0]:
        raise FileFormatError(path, f"uses H5MD version {major}.{minor}; meanfield reads version 1.x")
    if creator is None:
        raise FileFormatError(path, "is not a valid H5MD file: /h5md/creator is missing")
    if _attr_text(creator) != "meanfield":
        raise FileFormatError(
            path, f"was written by {_attr_text(creator)!r} (version {_attr_text(creator_version)}), not by "
                  "meanfield: only meanfield trajectories can be loaded")
    params = _require(f, path, "parameters", h5py.Group)
    with _guard(path, "/parameters"):
        fmt = params.attrs.get("format_version")
    if fmt is None:
        raise FileFormatError(path, "is not a complete meanfield trajectory: /parameters has no format_version")
    if int(fmt) > FORMAT_VERSION:
        raise FileFormatError(
            path, f"uses meanfield file format {int(fmt)}, newer than format {FORMAT_VERSION} which this "
                  "version of meanfield reads; upgrade meanfield")
    _require(f, path, "parameters/status", h5py.Dataset)
    _require(f, path, "particles", h5py.Group)
    flows = _flow_names(f, path)
    if PRIMARY not in flows:
        raise FileFormatError(path, f"is not a complete meanfield trajectory: /particles/{PRIMARY} is missing")
    for name in flows:
        _check_flow(f, path, name)


def _flow_names(f, path):
    with _guard(path, "/particles"):
        return tuple(k for k in f["particles"] if isinstance(f["particles"][k], h5py.Group))


def _check_flow(f, path, name):
    base = f"particles/{name}"
    box = _require(f, path, f"{base}/box", h5py.Group)
    for part in ("step", "time", "value"):
        _require(f, path, f"{base}/position/{part}", h5py.Dataset)
    with _guard(path, f"/{base}"):
        value = f[f"{base}/position/value"]
        dim = box.attrs.get("dimension")
        shape = value.shape
    if len(shape) != 3:
        raise FileFormatError(path, f"is not a valid meanfield trajectory: /{base}/position/value has shape "
                                    f"{shape}, not (T, m, p)")
    if dim is None or int(dim) != shape[2]:
        raise FileFormatError(path, f"is not a valid H5MD file: /{base}/box dimension {dim} does not match "
                                    f"the particle dimension p = {shape[2]}")


# ----------------------------------------------------------------------------------------------------------
# the trajectory objects


class Series(NamedTuple):
    """One recorded observable: ``value[i]`` was measured at ``step[i]``, time ``time[i]``."""

    step: np.ndarray
    time: np.ndarray
    value: np.ndarray


def _committed(group) -> int:
    """Rows completely written. The writer flushes value and time before it writes the step, and unwritten
    steps read as the fill value -1, so the committed rows are those up to the first step < 0."""
    n = min(group["step"].shape[0], group["time"].shape[0], group["value"].shape[0])
    tail = group["step"][max(0, n - 4) : n]  # only the last few rows can be uncommitted
    bad = np.flatnonzero(tail < 0)
    return n - len(tail) + int(bad[0]) if bad.size else n


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
        with _guard(self._path, f"particle snapshots of {self._ds.name}"):
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
        with _guard(path, f"/particles/{name}"):
            base = f["particles"][name]
            pos = base["position"]
            T = _committed(pos)
            steps = np.asarray(pos["step"][:T], dtype=np.int64)
            times = np.asarray(pos["time"][:T], dtype=np.float64)
            m_s = pos["value"].shape[1]
            ids = np.asarray(base["id"][:], dtype=np.int64) if "id" in base else np.arange(m_s)
            self.particles = Particles(path, pos["value"], steps, times, ids)
            obs_root = "observables" if name == PRIMARY else f"observables/{name}"
            self.observables = {}
            if obs_root in f:
                for key, grp in f[obs_root].items():
                    if isinstance(grp, h5py.Group) and {"step", "time", "value"} <= set(grp):
                        n = _committed(grp)
                        self.observables[key] = Series(
                            np.asarray(grp["step"][:n], dtype=np.int64),
                            np.asarray(grp["time"][:n], dtype=np.float64), grp["value"][:n])
            meta = f["parameters"]["flows"][name] if "flows" in f["parameters"] and name in f["parameters/flows"] \
                else None
            self.model = json.loads(_attr_text(meta.attrs["model"])) if meta is not None and "model" in meta.attrs \
                else {}
            self.dynamics = json.loads(_attr_text(meta.attrs["dynamics"])) \
                if meta is not None and "dynamics" in meta.attrs else {}
            self.status = _text(meta["status"]) if meta is not None and "status" in meta else _text(
                f["parameters/status"])
            self.m = int(meta.attrs["m"]) if meta is not None and "m" in meta.attrs else m_s

    @property
    def steps(self) -> np.ndarray:
        """Step numbers of the particle snapshots, shape (T,)."""
        return self.particles.steps

    @property
    def times(self) -> np.ndarray:
        """Times of the particle snapshots, shape (T,)."""
        return self.particles.times

    def _resume_record(self):
        key = f"parameters/resume/{self.name}"
        if key not in self._f:
            return None
        return self._f[key]

    def last_state(self):
        """The last recorded state at full float64 precision (``FlowState(step, t, theta (m, p))``)."""
        from .flow import FlowState

        with _guard(self.path, f"the resume state of flow {self.name!r}"):
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

        with _guard(self.path, f"the initial state of flow {self.name!r}"):
            rec = self._resume_record()
            if rec is not None and "theta0" in rec:
                return FlowState(int(rec.attrs["step0"]), float(rec.attrs["time0"]),
                                 np.array(rec["theta0"][:], dtype=np.float64))
        self._need_full("recover the initial state of")
        if len(self.particles) == 0:
            raise FileFormatError(self.path, f"has no snapshot of flow {self.name!r}")
        return FlowState(int(self.steps[0]), float(self.times[0]), self.particles[0])

    def _need_full(self, verb):
        if self.particles.dtype != np.float64 or self.particles.shape[1] != self.m:
            raise FileFormatError(self.path, f"cannot {verb} flow {self.name!r}: its particles are stored as "
                                             f"{self.particles.dtype} / a subset and no full-precision record "
                                             "is in /parameters/resume")

    def __repr__(self) -> str:
        return f"<FlowTrajectory {self.name!r}: {len(self.particles)} snapshots, {self.status}>"


class Trajectory(FlowTrajectory):
    """A trajectory file: the primary flow (``/particles/neurons``) plus the run's parameters.

    Use it as a context manager, or call :meth:`close`, to release the file.

    Attributes
    ----------
    path : pathlib.Path
    status : str
        ``running`` (being written, or the writer was killed), ``completed``, ``diverged`` or ``interrupted``.
    flows : tuple of str
        Names of the particles groups; :meth:`flow` opens one.
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
            with _guard(path, "/parameters"):
                params = f["parameters"]
                self.flows = _flow_names(f, path)
                self._file_status = _text(params["status"])
                self.end_time = _text(params["end_time"]) if "end_time" in params else ""
                self.config = json.loads(_attr_text(params["config"].attrs["json"])) if "config" in params else None
                self.seed = int(params.attrs["seed"]) if "seed" in params.attrs else None
                self.rng_state = json.loads(_attr_text(params.attrs["rng_state"])) \
                    if "rng_state" in params.attrs else None
                prov = params["provenance"].attrs if "provenance" in params else {}
                self.provenance = {k: _attr_text(v) for k, v in prov.items()}
                self.start_time = self.provenance.get("start_time", "")
                self.data = {}
                if "data" in params:
                    dg = params["data"]
                    self.data = {k: (json.loads(_attr_text(v)) if k == "recipe" else
                                     (_attr_text(v) if isinstance(v, (str, bytes)) else v.item()
                                      if isinstance(v, np.generic) else v))
                                 for k, v in dg.attrs.items()}
                    arrays = {k: dg[k][:] for k in ("X", "y", "X_test", "y_test", "teacher") if k in dg}
                    if "teacher" in arrays:
                        self.data["teacher"] = arrays.pop("teacher")
                    if arrays:
                        self.data["arrays"] = arrays
            FlowTrajectory.__init__(self, f, path, PRIMARY)
            self.status = self._file_status
        except BaseException:
            f.close()
            raise

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


def info(path) -> str:
    """A short human summary of a trajectory file (what ``meanfield info FILE`` prints)."""
    with load(path) as traj:
        lines = [f"{traj.path}: status {traj.status}",
                 f"  meanfield {traj.provenance.get('meanfield', '?')}, started {traj.start_time or '?'}"
                 + (f", ended {traj.end_time}" if traj.end_time else "")]
        if traj.data:
            lines.append(f"  data {traj.data.get('name', '?')}: n = {traj.data.get('n', '?')}, "
                         f"d = {traj.data.get('d', '?')}, n_test = {traj.data.get('n_test', '?')}")
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
