"""The trajectory reader: lazy particle selections, info(), and a clear FileFormatError for every bad file."""

import os
import shutil

import h5py
import numba
import numpy as np
import pyh5md
import pytest

import meanfield as mf
from meanfield.data import teacher_student
from meanfield.errors import FileFormatError
from meanfield.h5md import Recorder
from meanfield.run import simulate
from meanfield._hdf5 import lookup3 as _lookup3
from meanfield.observers import observer
from meanfield.trajectory import info, load


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """One small completed run (gzip, float64), and its in-memory result."""
    old = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        ds = teacher_student(2, 8, 4, k=1, activation="tanh", seed=2)
        model = mf.Model(d=2, m=9, activation="tanh")
        flow = mf.particle_flow(ds, model, mf.Dynamics(lr=0.5, dt=0.05))
        path = tmp_path_factory.mktemp("traj") / "run.h5"
        res = simulate(flow, mf.init_particles(model, 1), n_steps=12, snapshot_every=2, recorder=Recorder(path).sink())
    finally:
        numba.set_num_threads(old)
    return path, res


def test_lookup3_known_values():
    # Bob Jenkins' published driver values for hashlittle (lookup3.c, driver5)
    assert _lookup3(b"") == 0xDEADBEEF
    assert _lookup3(b"Four score and seven years ago") == 0x17770551
    assert _lookup3(b"Four score and seven years ago", 1) == 0xCD628161


class _Spy:
    """Wraps an h5py dataset and records every selection read from it."""

    def __init__(self, ds):
        self.ds, self.keys = ds, []
        self.shape, self.dtype, self.name = ds.shape, ds.dtype, ds.name

    def __getitem__(self, key):
        self.keys.append(key)
        return self.ds[key]


def _rows_read(spy, T):
    """Number of snapshot rows the recorded selections touched."""
    total = 0
    for key in spy.keys:
        k = key[0]
        if isinstance(k, slice):
            total += len(range(*k.indices(T)))
        elif isinstance(k, (int, np.integer)):
            total += 1
        else:
            total += len(k)
    return total


@pytest.mark.parametrize("key", [
    3, -1, slice(1, 4), slice(None, None, -2), [4, 0, 4], np.array([True, False] * 3 + [True]),
    (2, 5), (-1, [8, 0, 3, 3]), ([0, 6], [1, 2]), (slice(0, 7, 3), slice(2, 5)), ([], [1]), (1, []),
])
def test_lazy_selection_matches_and_reads_only_what_is_asked(recorded, key):
    path, res = recorded
    full = res.theta  # (7, 9, 3), what simulate kept in memory
    with load(path) as traj:
        spy = _Spy(traj.particles._ds)
        traj.particles._ds = spy
        got = traj.particles[key]
        k = key if isinstance(key, tuple) else (key,)
        sel = full[np.arange(7)[k[0]]]
        if isinstance(k[0], (int, np.integer)):
            expected = sel[np.arange(9)[k[1]]] if len(k) == 2 else sel
        else:
            expected = sel[:, np.arange(9)[k[1]]] if len(k) == 2 else sel
        np.testing.assert_array_equal(got, expected)
        asked = len(np.arange(7)[k[0]].reshape(-1))
        assert _rows_read(spy, 7) <= asked


def test_index_errors(recorded):
    path, _ = recorded
    with load(path) as traj:
        with pytest.raises(IndexError):
            traj.particles[7]
        with pytest.raises(IndexError):
            traj.particles[0, 9]
        with pytest.raises(IndexError):
            traj.particles[0.5]


def test_info_summarises(recorded):
    path, res = recorded
    text = info(path)
    assert "status completed" in text and str(path) in text
    assert "7 snapshots" in text and "steps 0 .. 12" in text
    assert f"train_loss: {res.observables['train_loss'][-1]:.6g}" in text
    assert "m = 9 (all stored as float64), p = 3" in text


# ------------------------------------------------------------------------------------------------------------
# bad files: each gives FileFormatError naming the file and the problem


def _copy(recorded, tmp_path, name="bad.h5"):
    dst = tmp_path / name
    shutil.copy(recorded[0], dst)
    return dst


def _expect(path, *words):
    with pytest.raises(FileFormatError) as err:
        with load(path) as traj:
            traj.particles.read()
    msg = str(err.value)
    assert str(path) in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


def test_missing_file_directory_empty_and_text(tmp_path):
    _expect(tmp_path / "nope.h5", "no such file")
    _expect(tmp_path, "directory")
    (tmp_path / "empty.h5").write_bytes(b"")
    _expect(tmp_path / "empty.h5", "empty")
    (tmp_path / "t.h5").write_text("step,time\n0,0.0\n")
    _expect(tmp_path / "t.h5", "not an HDF5 file")


@pytest.mark.parametrize("fraction", [0.2, 0.6, 0.95])
def test_truncated(recorded, tmp_path, fraction):
    path = _copy(recorded, tmp_path)
    os.truncate(path, int(os.path.getsize(path) * fraction))
    _expect(path, "truncated")


def test_corrupted_superblock(recorded, tmp_path):
    path = _copy(recorded, tmp_path)
    with open(path, "r+b") as fh:
        fh.seek(20)
        b = fh.read(1)
        fh.seek(20)
        fh.write(bytes([b[0] ^ 0xFF]))
    _expect(path, "corrupted")


def test_corrupted_object_headers(recorded, tmp_path):
    path = _copy(recorded, tmp_path)
    data = bytearray(path.read_bytes())
    start = 0
    hits = 0
    while (i := data.find(b"OHDR", start)) >= 0:  # every version-2 object header: flip a byte after its signature
        data[i + 6] ^= 0x5A
        start, hits = i + 4, hits + 1
    assert hits > 5
    path.write_bytes(bytes(data))
    _expect(path, "corrupted")


def test_corrupted_particle_chunk(recorded, tmp_path):
    path = _copy(recorded, tmp_path)
    with h5py.File(path, "r") as f:
        chunk = f["particles/neurons/position/value"].id.get_chunk_info(3)
    with open(path, "r+b") as fh:
        fh.seek(chunk.byte_offset + chunk.size // 2)
        b = fh.read(1)
        fh.seek(chunk.byte_offset + chunk.size // 2)
        fh.write(bytes([b[0] ^ 0xFF]))
    with load(path) as traj:  # opens; snapshots other than 3 are intact
        np.testing.assert_array_equal(traj.particles[2], recorded[1].theta[2])
        with pytest.raises(FileFormatError) as err:
            traj.particles[3]
    assert str(path) in str(err.value) and "corrupted" in str(err.value)


@pytest.mark.parametrize("missing,words", [
    ("h5md", ("not an H5MD file",)),
    ("h5md/creator", ("creator is missing",)),
    ("parameters", ("/parameters is missing",)),
    ("parameters/status", ("/parameters/status is missing",)),
    ("particles", ("/particles is missing",)),
    ("particles/neurons", ("/particles/neurons is missing",)),
    ("particles/neurons/box", ("/particles/neurons/box is missing",)),
    ("particles/neurons/position/value", ("/particles/neurons/position/value is missing",)),
    ("particles/neurons/position/step", ("/particles/neurons/position/step is missing",)),
])
def test_missing_groups(recorded, tmp_path, missing, words):
    path = _copy(recorded, tmp_path)
    with h5py.File(path, "a") as f:
        del f[missing]
    _expect(path, *words)


def test_foreign_files(tmp_path):
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = np.arange(3)
    _expect(plain, "not an H5MD file")
    other = tmp_path / "other.h5"
    with pyh5md.File(other, "w", creator="some-md-code", creator_version="2.0", author="x") as f:
        part = f.particles_group("atoms")
        part.create_box(dimension=3, boundary=["none"] * 3)
        el = pyh5md.element(part, "position", store="time", time=True, shape=(4, 3), dtype=float)
        el.append(np.zeros((4, 3)), 0, 0.0)
    _expect(other, "some-md-code", "not by meanfield")


@pytest.mark.parametrize("where,value,words", [
    ("h5md", np.array([1, 2]), ("H5MD version 1.2", "newer")),
    ("h5md", np.array([2, 0]), ("H5MD version 2.0", "newer")),
    ("parameters", np.int32(2), ("file format 2", "newer")),
])
def test_newer_versions(recorded, tmp_path, where, value, words):
    path = _copy(recorded, tmp_path)
    with h5py.File(path, "a") as f:
        f[where].attrs["version" if where == "h5md" else "format_version"] = value
    _expect(path, *words)


def test_bad_files_never_raise_bare_h5py_errors(recorded, tmp_path, rng):
    """Random damage anywhere: either the file still reads, or the error is a FileFormatError."""
    src = recorded[0]
    size = os.path.getsize(src)
    outcomes = set()
    for k in range(12):
        path = tmp_path / f"r{k}.h5"
        data = bytearray(src.read_bytes())
        for pos in rng.integers(0, size, 8):
            data[pos] ^= 0xFF
        path.write_bytes(bytes(data))
        try:
            with load(path) as traj:
                traj.particles.read()
                outcomes.add("read")
        except FileFormatError as err:
            assert str(path) in str(err)
            outcomes.add("error")
    assert "error" in outcomes


def _live_copy(tmp_path):
    """A copy of a file taken while its writer is mid-run: what a SIGKILL leaves (SWMR flags set)."""
    ds = teacher_student(2, 8, 4, k=1, activation="tanh", seed=2)
    model = mf.Model(d=2, m=9, activation="tanh")
    flow = mf.particle_flow(ds, model, mf.Dynamics(lr=0.5, dt=0.05))
    path, copy = tmp_path / "live.h5", tmp_path / "killed.h5"

    def obs(state):
        if state.step == 6:
            shutil.copy(path, copy)
        return float(state.step)

    simulate(flow, mf.init_particles(model, 1), n_steps=8, snapshot_every=2, observers=[observer("s", obs)],
             recorder=Recorder(path).sink())
    return copy


def test_file_of_a_killed_writer_reads_and_corruption_fails_fast(tmp_path):
    import time

    copy = _live_copy(tmp_path)
    with pytest.raises(OSError):
        h5py.File(copy, "r")  # plain HDF5 refuses: the file is marked as open for writing
    with load(copy) as traj:
        assert traj.status == "running" and traj.end_time == ""
        np.testing.assert_array_equal(traj.steps, [0, 2, 4])
        np.testing.assert_array_equal(traj.observables["s"].value, [0.0, 2.0, 4.0])
    data = bytearray(copy.read_bytes())
    start = 0
    while (i := data.find(b"OHDR", start)) >= 0:
        data[i + 6] ^= 0x5A
        start = i + 4
    copy.write_bytes(bytes(data))
    t0 = time.monotonic()
    _expect(copy, "corrupted")
    assert time.monotonic() - t0 < 20  # SWMR readers retry checksums; the retries are bounded
