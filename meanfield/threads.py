r"""How many threads a kernel call uses: one below a measured amount of work.

The compiled kernels parallelise over independent outputs (data points, particles, grid rows) with numba's
``prange``, and every output is summed in a fixed order, so their results are bitwise identical at any thread
count (tests/test_flow.py, test_population.py, test_ntk.py and test_pde.py compare 1 with 2 threads
bitwise). What the thread count changes is speed, and for small problems it changes
it the wrong way: a parallel region costs a fork and a barrier on every call, and when another process holds
a core (a sweep's other worker, a test run, a browser) the barrier waits for a thread the operating system
has not scheduled. Measured on the 2-core reference machine (``benchmarks/bench_threads.py``,
docs/performance.md), two threads made a 15-point, 16-particle gradient step 5 times slower than one thread
with the other core busy, and 30 times slower on a quiet machine with passive waiting (below).

:func:`threads_for` therefore runs a call on one thread when its work per velocity evaluation (data points x
particles x parameters per particle) is below :data:`SERIAL_BELOW`, and on the thread count in force
otherwise (``NUMBA_NUM_THREADS``, ``numba.set_num_threads`` or a sweep's ``threads_per_worker``). The
setting is numba's per-thread one, so concurrent callers (Dask worker threads) do not disturb each other,
and it is restored when the call returns.

The threading layer is numba's default choice, which is OpenMP (GNU libgomp) where TBB is not installed.
libgomp's threads spin at every barrier for up to about 300 000 iterations before they sleep. On a quiet
machine that saves a wake-up per parallel region; on a busy one the spinning thread takes a time slice
from the process that holds the other core while the thread doing the work waits for it: two threads were
1.3 to 5 times slower than one at 10^5 to 10^6 work with the other core busy, and within a few per cent of
one with the spinning off (``OMP_WAIT_POLICY=passive``; ``benchmarks/bench_threads.py``). The price is paid on
a quiet machine: a passive thread is woken for every parallel region (about 0.2 ms here), which is why the
serial threshold is as high as it is, and between the threshold and about 10^6 work two threads gain 1.5x
where spinning ones gained 2x. meanfield therefore
starts numba's threads with ``OMP_WAIT_POLICY=passive`` unless the environment sets ``OMP_WAIT_POLICY`` or
``GOMP_SPINCOUNT`` (then the user's choice stands), and removes the variable again once the threads are
started, so that other OpenMP libraries loaded later (PyTorch, scikit-learn) see the environment as it was.
This takes effect only if meanfield is the first to start numba's threads in the process.

The finite-data kernels on their blocked path (batches of more than
:data:`meanfield._kernels.finite.SMALL_PAIRS` point-particle pairs) make their tiles of pre-activations with BLAS products called from inside numba's parallel loops. A multi-threaded BLAS there
would start its own threads under each of numba's (oversubscription, and a result that could depend on the
BLAS thread count), so :func:`threads_for` also limits every BLAS library to one thread for such calls, through
threadpoolctl, and restores the limit afterwards.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import numba

from ._kernels.finite import BLOCKED_MIN_WORK

__all__ = ["SERIAL_BELOW", "POPULATION_SERIAL_BELOW", "threads_for"]

#: Work (points x particles x parameters per particle, per velocity evaluation) below which a kernel call runs
#: on one thread. Measured with benchmarks/bench_threads.py (docs/performance.md): with the blocked BLAS kernels
#: (batches above SMALL_PAIRS = 2^14 point-particle pairs) one thread beats two passively waiting ones on the quiet 2-core machine up to
#: about 10^6 work (0.38 against 0.68 ms at 256 x 8 x 512) and ties at 4.5 x 10^6; from 1.7 x 10^7 two threads
#: are 1.3-2x faster when quiet and within the machine's noise of one thread when the other core is busy.
SERIAL_BELOW = 1 << 23

#: The same threshold for the population flow's pairwise kernel (work: (m + k) m p, k teacher neurons), whose
#: three parallel regions per evaluation over triangular blocks pay later: with two threads on the quiet
#: machine it was 1.9x slower than one thread at m = 256, 0.80-0.94 at m = 1024 and 0.58 from m = 2048; with
#: the other core busy 1.2-1.3x slower at m = 1024 (benchmarks/bench_threads.py).
POPULATION_SERIAL_BELOW = 1 << 24


def _start_threads_passive():
    """Start numba's threading layer with passive OpenMP waiting unless the user chose a policy."""
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return
    os.environ["OMP_WAIT_POLICY"] = "passive"
    try:
        numba.get_num_threads()  # loads the threading layer, which reads the variable once, now
    finally:
        del os.environ["OMP_WAIT_POLICY"]


_start_threads_passive()


_BLAS = []


def _blas_controller():
    """threadpoolctl's view of the loaded BLAS libraries, made once, after numba's BLAS (SciPy's) is loaded."""
    if not _BLAS:
        import scipy.linalg.cython_blas  # noqa: F401  (what numba's np.dot calls)
        from threadpoolctl import ThreadpoolController

        _BLAS.append(ThreadpoolController())
    return _BLAS[0]


@contextmanager
def threads_for(work: float, population: bool = False):
    """Run the enclosed kernel calls on one thread if ``work < SERIAL_BELOW``, else unchanged.

    Calls whose work reaches :data:`meanfield._kernels.finite.BLOCKED_MIN_WORK` (not ``population``), the least
    work of a call on the blocked path, also run with every BLAS library limited to one thread (their BLAS
    products run inside numba's parallel loops).

    Parameters
    ----------
    work : float
        The kernel's work per call in multiply-adds, roughly (points x particles x parameters per particle).
    population : bool
        Compare with :data:`POPULATION_SERIAL_BELOW` instead (the population flow's pairwise kernel).

    Examples
    --------
    >>> import numba
    >>> from meanfield.threads import threads_for
    >>> with threads_for(100):
    ...     numba.get_num_threads()
    1
    """
    with _blas_one_thread(not population and work >= BLOCKED_MIN_WORK):
        if work >= (POPULATION_SERIAL_BELOW if population else SERIAL_BELOW):
            yield
            return
        before = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            yield
        finally:
            numba.set_num_threads(before)


@contextmanager
def _blas_one_thread(limit: bool):
    if not limit:
        yield
        return
    with _blas_controller().limit(limits=1, user_api="blas"):
        yield
