"""Shared fixtures. No global seeds: every test that needs randomness takes the ``rng`` fixture, a fresh
``numpy.random.Generator`` seeded from the test's own id (reproducible, and different across tests).

The quick canonical figures are computed once per test session: ``figures_dir`` (autouse, session scope) sets
``MEANFIELD_FIGURES_DIR`` to one folder, which the figure examples (tests/test_examples.py), the figure tests
(tests/test_figures.py) and the documentation build (tests/test_site.py) all pass to
``meanfield.figures.make(..., reuse=True)``."""

import os
import sys
import zlib
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

# Let tests import the slow references as ``import reference``.
sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture(scope="session", autouse=True)
def figures_dir(tmp_path_factory):
    """The folder of the session's quick figures, exported as ``MEANFIELD_FIGURES_DIR``.

    A fresh temporary folder, unless ``MEANFIELD_FIGURES_DIR`` is set already: then that folder is kept, and
    ``reuse=True`` recomputes only the figures whose code, configuration or version changed since.
    """
    preset = os.environ.get("MEANFIELD_FIGURES_DIR")
    path = Path(preset).resolve() if preset else tmp_path_factory.mktemp("quick-figures")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEANFIELD_FIGURES_DIR", str(path))
        yield path


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
