r"""The trajectory file format underneath the reader and the writer: its constants, its checks, and the
repairs that crash safety needs. Private: :mod:`meanfield.trajectory` reads files, :mod:`meanfield.h5md`
writes them, both through this module (docs/hdf5-format.md states the format and the crash-safety argument).

Why each piece is here:

* **The superblock, parsed by hand** (:func:`superblock`). HDF5 reports a truncated or foreign file with
  errors that depend on the library version, and a file left by a killed SWMR writer has its "open for writing"
  flags still set. Reading the first bytes ourselves tells these cases apart before HDF5 sees the file, so each
  gets its own one-line error.
* **lookup3** (:func:`lookup3`). HDF5 checksums its metadata with Bob Jenkins' lookup3 hash; checking the
  superblock's checksum, and writing a repaired superblock, needs the same hash.
* **Clearing the status flags** (:func:`clear_status_flags`, what ``h5clear -s --increment=0`` does). A
  writer killed in SWMR mode leaves the flags set, and HDF5 then refuses to open the file for writing: a resume
  needs them cleared, on a private copy of the file.
* **Bounded SWMR read attempts** (:func:`open_file`, through ctypes). A SWMR reader retries a metadata read
  whose checksum fails, because the writer may be mid-flush; HDF5's default of 100 attempts with growing pauses
  makes a file damaged by a killed writer look like a hang. ``H5Pset_metadata_read_attempts`` is not exposed by
  h5py, so the libhdf5 that h5py loaded is called through ctypes (and the default is used where it cannot be
  found).
* **Committed rows** (:func:`committed`). The writer appends value and time, flushes, then writes the step; an
  unwritten step reads as the fill value -1, so the committed rows of an element are those before the first
  negative step.
"""

from __future__ import annotations

import contextlib
import os
import struct
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np

from .errors import FileFormatError

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


def lookup3(data: bytes, initval: int = 0) -> int:
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


def superblock(path: Path) -> _Superblock:
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
        ok = lookup3(body) == stored
    return _Superblock(offset, version, flags, base + eof, ok, size)


def clear_status_flags(path) -> bool:
    """Make a file left by a killed writer writable again (what ``h5clear -s --increment=0`` does).

    Clears the superblock's "open for writing" flags and raises its end-of-allocation address to the file's
    size: a writer killed in SWMR mode can leave objects allocated past the recorded address. A file shorter
    than that address (pages allocated, their tail not yet written) is padded with zeros up to it. Returns
    True when the superblock was changed. Only call this when no process is writing the file.
    """
    path = Path(path)
    sb = superblock(path)
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
        head[n : n + 4] = struct.pack("<I", lookup3(bytes(head[:n])))
        os.pwrite(fd, bytes(head[: n + 4]), sb.offset)  # one write of 48 bytes: a kill leaves old or new
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


# ----------------------------------------------------------------------------------------------------------
# opening and checking


@contextlib.contextmanager
def guard(path, what: str):
    """Turn h5py/HDF5 failures while reading ``what`` into FileFormatError naming the file."""
    try:
        yield
    except FileFormatError:
        raise
    except (OSError, KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise FileFormatError(path, f"is corrupted: HDF5 could not read {what} ({hdf5_reason(exc)})") from None


def hdf5_reason(exc) -> str:
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
    sb = superblock(path)
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
        reason = hdf5_reason(exc)
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


def attr_text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return attr_text(value[()])
    return str(value)


def text(ds) -> str:
    return attr_text(ds[()]).rstrip("\x00 ")


def _require(f, path, name, kind=None):
    with guard(path, "/" + name):
        if name not in f:
            raise FileFormatError(path, f"is not a complete meanfield trajectory: /{name} is missing")
        obj = f[name]
    if kind is not None and not isinstance(obj, kind):
        want = "group" if kind is h5py.Group else "dataset"
        raise FileFormatError(path, f"is not a valid meanfield trajectory: /{name} is not a {want}")
    return obj


def check_layout(f: h5py.File, path) -> None:
    """Check that an open file is a meanfield H5MD trajectory this version can read (FileFormatError if not)."""
    with guard(path, "the root group"):
        has_h5md = "h5md" in f
    if not has_h5md:
        raise FileFormatError(path, "is not an H5MD file: it has no /h5md group (a foreign HDF5 file?)")
    h5md = _require(f, path, "h5md", h5py.Group)
    with guard(path, "/h5md"):
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
    if attr_text(creator) != "meanfield":
        raise FileFormatError(
            path, f"was written by {attr_text(creator)!r} (version {attr_text(creator_version)}), not by "
                  "meanfield: only meanfield trajectories can be loaded")
    params = _require(f, path, "parameters", h5py.Group)
    with guard(path, "/parameters"):
        fmt = params.attrs.get("format_version")
    if fmt is None:
        raise FileFormatError(path, "is not a complete meanfield trajectory: /parameters has no format_version")
    if int(fmt) > FORMAT_VERSION:
        raise FileFormatError(
            path, f"uses meanfield file format {int(fmt)}, newer than format {FORMAT_VERSION} which this "
                  "version of meanfield reads; upgrade meanfield")
    _require(f, path, "parameters/status", h5py.Dataset)
    _require(f, path, "particles", h5py.Group)
    flows = flow_names(f, path)
    fields = field_names(f, path)
    if PRIMARY not in flows and not fields:  # a PDE run records a field (/fields/density) and no particles
        raise FileFormatError(path, f"is not a complete meanfield trajectory: /particles/{PRIMARY} is missing")
    for name in flows:
        _check_flow(f, path, name)
    for name in fields:
        _check_field(f, path, name)


def flow_names(f, path):
    with guard(path, "/particles"):
        return tuple(k for k in f["particles"] if isinstance(f["particles"][k], h5py.Group))


def field_names(f, path):
    """Names of the groups under /fields (none in a particle run)."""
    with guard(path, "/fields"):
        if "fields" not in f:
            return ()
        if not isinstance(f["fields"], h5py.Group):
            raise FileFormatError(path, "is not a valid meanfield trajectory: /fields is not a group")
        return tuple(k for k in f["fields"] if isinstance(f["fields"][k], h5py.Group))


def _check_field(f, path, name):
    base = f"fields/{name}"
    for part in ("step", "time", "value"):
        _require(f, path, f"{base}/{part}", h5py.Dataset)
    with guard(path, f"/{base}"):
        shape = f[f"{base}/value"].shape
        cells = f[base].attrs.get("cells")
        lower, upper = f[base].attrs.get("lower"), f[base].attrs.get("upper")
    if cells is None or lower is None or upper is None:
        raise FileFormatError(path, f"is not a valid meanfield trajectory: /{base} lacks its grid attributes "
                                    "lower, upper, cells")
    if tuple(int(c) for c in np.asarray(cells).reshape(-1)) != tuple(shape[1:]) or \
            np.asarray(lower).size != len(shape) - 1 or np.asarray(upper).size != len(shape) - 1:
        raise FileFormatError(path, f"is not a valid meanfield trajectory: /{base}/value has shape {shape}, "
                                    f"not (T, *cells) with cells = {np.asarray(cells).tolist()}")


def _check_flow(f, path, name):
    base = f"particles/{name}"
    box = _require(f, path, f"{base}/box", h5py.Group)
    for part in ("step", "time", "value"):
        _require(f, path, f"{base}/position/{part}", h5py.Dataset)
    with guard(path, f"/{base}"):
        value = f[f"{base}/position/value"]
        dim = box.attrs.get("dimension")
        shape = value.shape
    if len(shape) != 3:
        raise FileFormatError(path, f"is not a valid meanfield trajectory: /{base}/position/value has shape "
                                    f"{shape}, not (T, m, p)")
    if dim is None or int(dim) != shape[2]:
        raise FileFormatError(path, f"is not a valid H5MD file: /{base}/box dimension {dim} does not match "
                                    f"the particle dimension p = {shape[2]}")


def committed(group) -> int:
    """Rows completely written. The writer flushes value and time before it writes the step, and unwritten
    steps read as the fill value -1, so the committed rows are those up to the first step < 0."""
    n = min(group["step"].shape[0], group["time"].shape[0], group["value"].shape[0])
    tail = group["step"][max(0, n - 4) : n]  # only the last few rows can be uncommitted
    bad = np.flatnonzero(tail < 0)
    return n - len(tail) + int(bad[0]) if bad.size else n


