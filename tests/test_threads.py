"""The thread rule: small kernel calls run on one thread, the caller's setting is always restored.

That results do not depend on the thread count is tested per flow (test_flow.py, test_population.py,
test_ntk.py, test_pde.py: 1 against 2 threads with the parallel kernels forced at every size).
"""

import numba
import numpy as np
import pytest

import meanfield as mf
from meanfield import threads as T
from meanfield._kernels.finite import BLOCKED_MIN_WORK
from meanfield.flow import field_work


@pytest.fixture
def two_threads():
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs NUMBA_NUM_THREADS >= 2")
    before = numba.get_num_threads()
    numba.set_num_threads(2)
    yield
    numba.set_num_threads(before)


def _blas_threads():
    from threadpoolctl import threadpool_info

    return sorted({lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"})


def test_blocked_calls_run_blas_on_one_thread_and_restore():
    """From BLOCKED_MIN_WORK (the least work on the blocked path) the kernels call BLAS inside numba's parallel loops: BLAS is held to one thread
    there (not for the population flow, which calls no BLAS), and the caller's BLAS threads come back after."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(2, user_api="blas"):
        assert _blas_threads() == [2]
        with T.threads_for(BLOCKED_MIN_WORK - 1):
            assert _blas_threads() == [2]
        with T.threads_for(BLOCKED_MIN_WORK):
            assert _blas_threads() == [1]
        with T.threads_for(BLOCKED_MIN_WORK, population=True):
            assert _blas_threads() == [2]
        with pytest.raises(KeyError):
            with T.threads_for(BLOCKED_MIN_WORK):
                raise KeyError("inside")
        assert _blas_threads() == [2]


def test_small_work_runs_on_one_thread_and_restores(two_threads):
    seen = []
    with T.threads_for(T.SERIAL_BELOW - 1):
        seen.append(numba.get_num_threads())
    with T.threads_for(T.SERIAL_BELOW):
        seen.append(numba.get_num_threads())
    with T.threads_for(T.SERIAL_BELOW, population=True):
        seen.append(numba.get_num_threads())
    with T.threads_for(T.POPULATION_SERIAL_BELOW, population=True):
        seen.append(numba.get_num_threads())
    assert seen == [1, 2, 1, 2] and numba.get_num_threads() == 2
    with pytest.raises(KeyError):
        with T.threads_for(0):
            raise KeyError("inside")
    assert numba.get_num_threads() == 2


def test_flows_count_their_work():
    """Work per velocity evaluation: points (or the SGD batch, or particles plus teacher neurons) x m x p."""
    from meanfield._kernels import advance as adv
    from meanfield.flow import _stepper, finite_field
    from meanfield.population import _population_field

    rng = np.random.default_rng(0)
    model = mf.Model(d=3, m=10, bias=True)  # p = 5
    data = mf.from_arrays(rng.standard_normal((7, 3)), rng.standard_normal(7))
    full, sgd = mf.Dynamics(), mf.Dynamics(integrator="sgd", batch_size=4)
    pop, _ = _population_field(mf.data.random_teacher(3, 2, bias=True, seed=0), model, full, "auto", None)
    online = pop._replace(kind=adv.ONLINE, X=np.zeros((6, 3)), y=np.zeros(6))
    cases = [(finite_field(data, model, full), full, 7), (finite_field(data, model, sgd), sgd, 4),
             (pop, full, 10 + 2), (online, mf.Dynamics(integrator="sgd", batch_size=6), 6)]
    for field, dyn, rows in cases:
        assert field_work(field, _stepper(dyn), model) == rows * 10 * 5


@pytest.mark.parametrize("kind, kw", [
    ("particle", dict(integrator="rk4")), ("particle", dict(integrator="euler_maruyama", temperature=0.1)),
    ("particle", dict(integrator="sgd", batch_size=7, temperature=0.05)), ("linearized", dict(integrator="heun")),
])
def test_the_rule_changes_the_thread_count_only(two_threads, monkeypatch, kind, kw):
    """Below SERIAL_BELOW a call runs on one thread; with two threads forced the same steps (and the model's
    outputs) are bitwise identical."""
    rng = np.random.default_rng(3)
    model = mf.Model(d=2, m=16, activation="tanh", bias=True, sigma_b=0.3)
    X, y = rng.standard_normal((15, 2)), rng.standard_normal(15)
    theta = mf.init_particles(model, rng)
    make = mf.particle_flow if kind == "particle" else (lambda data, mo, dy: mf.linearized_flow(data, mo, dy, theta))
    flow = make((X, y), model, mf.Dynamics(dt=0.05, seed=4, **kw))
    calls = []
    real = numba.set_num_threads
    monkeypatch.setattr(numba, "set_num_threads", lambda n: calls.append(n) or real(n))
    serial = flow.advance(flow.init(theta), 40).theta
    f_serial = mf.outputs(serial, X, model)
    assert calls[:2] == [1, 2]  # 15 x 16 x 4 is below SERIAL_BELOW: one thread for the call, then restored
    monkeypatch.setattr(T, "SERIAL_BELOW", 0)
    parallel = flow.advance(flow.init(theta), 40).theta
    assert np.all(np.isfinite(serial)) and not np.array_equal(serial, theta)
    assert serial.tobytes() == parallel.tobytes()
    assert f_serial.tobytes() == mf.outputs(parallel, X, model).tobytes()
