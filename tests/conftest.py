"""Shared fixtures. No global seeds: every test that needs randomness takes the ``rng`` fixture, a fresh
``numpy.random.Generator`` seeded from the test's own id (reproducible, and different across tests)."""

import os
import sys
import zlib

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

# Let tests import the slow references as ``import reference``.
sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture
def rng(request):
    """A Generator seeded by a CRC of the test's node id."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


@pytest.fixture
def one_thread():
    """Run numba's parallel kernels on one thread for the duration of a test.

    For tests that make thousands of tiny kernel calls: on a loaded machine each parallel launch can cost
    milliseconds. Results do not depend on the thread count (test_flow.py checks 1 vs 2 threads bitwise).
    """
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(before)
