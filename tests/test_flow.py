"""Tests of meanfield.flow, each against something independent:

* velocities against central finite differences of the risk, for every activation, preset, bias, layer_lr
  and weight decay, and against the slow NumPy reference (tests/reference.py) to 1e-12 on random shapes;
* one step of each integrator against a hand-written NumPy step; the risk non-increasing along small-dt
  gradient flow; the observed convergence orders 1, 2, 4 of Euler, Heun and RK4;
* Langevin dynamics without data as an Ornstein-Uhlenbeck process (stationary variance, mean, lag correlation);
* SGD batches as uniform samples without replacement whose velocities average to the full-batch velocity;
* bitwise determinism across thread counts, repeated runs and split runs;
* divergence reporting, float32, and one test per bad input checking the error type and the parameter named.
"""

import itertools
import math
import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest
from scipy import stats

import meanfield as mf
import reference as ref
from meanfield.ntk import model_ntk

SCALINGS = {
    "mean_field": dict(scaling="mean_field"),
    "ntk": dict(scaling="ntk"),
    "lazy": dict(scaling="lazy", lazy_scale=3.0),
    "explicit": dict(scaling=mf.get_scaling("explicit", alpha=0.7, beta=0.3, c=2.0)),
}
DYNAMICS = {
    "plain": dict(),
    "layer_lr+decay": dict(lr=0.7, layer_lr=(0.5, 2.0, 3.0), weight_decay=0.1),
}
SHAPES = [(1, 1, 1), (1, 7, 3), (5, 1, 2), (13, 9, 4), (31, 17, 5), (8, 64, 1)]


def _problem(rng, n, m, d, activation="tanh", bias=False, away_from_kinks=False, **model_kw):
    """Model, particles, inputs and targets; for relu optionally redraw until every |z_ij| > 1e-3."""
    model = mf.Model(d=d, m=m, activation=activation, bias=bias, sigma_b=0.5, **model_kw)
    while True:
        theta = mf.init_particles(model, rng)
        X = rng.standard_normal((n, d))
        if not away_from_kinks or np.min(np.abs(ref.preactivations(theta, X, bias))) > 1e-3:
            break
    y = rng.standard_normal(n)
    return model, theta, X, y


def _ref_velocities(theta, X, y, model, dyn, sigma=None, grad=None):
    sc = model.scale
    return ref.velocities(
        theta, X, y, model.act.name if sigma is None else sigma, model.bias, sc.alpha, sc.beta, sc.c,
        dyn.lr, dyn.layer_lr, dyn.weight_decay, grad=grad,
    )


# ---------------------------------------------------------------------------------------------------------
# velocities


@pytest.mark.parametrize("dyn_name", sorted(DYNAMICS))
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("preset", sorted(SCALINGS))
@pytest.mark.parametrize("activation", sorted(ref.SIGMA))
def test_velocities_are_finite_differences_of_risk(rng, activation, preset, bias, dyn_name):
    """v = -eta m^beta / c^2 D grad R - lambda theta with grad R by central differences of the risk.

    (mf.risk equals the reference risk to 1e-12, see test_model.py.)"""
    model, theta, X, y = _problem(rng, 7, 5, 3, activation, bias, away_from_kinks=True, **SCALINGS[preset])
    dyn = mf.Dynamics(**DYNAMICS[dyn_name])
    sc = model.scale
    grad = ref.central_difference(lambda th: ref.risk(th, X, y, activation, bias, sc.alpha, sc.c), theta, 1e-5)
    want = _ref_velocities(theta, X, y, model, dyn, grad=grad)
    v = mf.velocities(theta, X, y, model, dyn)
    assert v.shape == theta.shape
    assert ref.rel_err(v, want) < 1e-6


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("activation", sorted(ref.SIGMA))
@pytest.mark.parametrize("bias", [False, True])
def test_velocities_match_reference(rng, shape, activation, bias):
    n, m, d = shape
    preset = ["mean_field", "ntk", "lazy", "explicit"][(n + m + d) % 4]
    model, theta, X, y = _problem(rng, n, m, d, activation, bias, **SCALINGS[preset])
    dyn = mf.Dynamics(**DYNAMICS["layer_lr+decay"])
    want = _ref_velocities(theta, X, y, model, dyn)
    assert ref.rel_err(mf.velocities(theta, X, y, model, dyn), want) < 1e-12
    # the default dynamics is eta = 1, D = I, lambda = 0
    want = _ref_velocities(theta, X, y, model, mf.Dynamics(lr=1.0, layer_lr=(1, 1, 1), weight_decay=0.0))
    assert ref.rel_err(mf.velocities(theta, X, y, model), want) < 1e-12


def _sin(z):
    return math.sin(z)


def _cos(z):
    return math.cos(z)


def test_custom_activation_velocities(rng):
    """One custom activation (uncached compile): outputs and velocities against the reference and finite
    differences."""
    act = mf.custom(_sin, _cos, name="sin")
    model, theta, X, y = _problem(rng, 6, 5, 3, act, True, scaling="ntk")
    dyn = mf.Dynamics(**DYNAMICS["layer_lr+decay"])
    sigma = (np.sin, np.cos)
    assert ref.rel_err(mf.outputs(theta, X, model), ref.outputs(theta, X, np.sin, True, 0.5, 1.0)) < 1e-12
    v = mf.velocities(theta, X, y, model, dyn)
    assert ref.rel_err(v, _ref_velocities(theta, X, y, model, dyn, sigma=sigma)) < 1e-12
    grad = ref.central_difference(lambda th: ref.risk(th, X, y, np.sin, True, 0.5, 1.0), theta, 1e-5)
    assert ref.rel_err(v, _ref_velocities(theta, X, y, model, dyn, sigma=sigma, grad=grad)) < 1e-6


def test_custom_activation_from_builtin_functions(rng):
    """``custom(math.sin, math.cos)`` either works or is refused with a ConfigError (never a raw numba error)."""
    try:
        act = mf.custom(math.sin, math.cos, name="sin")
        model, theta, X, _ = _problem(rng, 4, 3, 2, act)
        f = mf.outputs(theta, X, model)
    except mf.ConfigError as exc:
        assert "activation" in str(exc)
        return
    assert ref.rel_err(f, ref.outputs(theta, X, np.sin)) < 1e-12


# ---------------------------------------------------------------------------------------------------------
# integrators


def _hand_step(integrator, theta, h, vel):
    if integrator == "euler":
        return theta + h * vel(theta)
    if integrator == "heun":
        k1 = vel(theta)
        k2 = vel(theta + h * k1)
        return theta + h / 2 * (k1 + k2)
    k1 = vel(theta)
    k2 = vel(theta + h / 2 * k1)
    k3 = vel(theta + h / 2 * k2)
    k4 = vel(theta + h * k3)
    return theta + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


@pytest.mark.parametrize("integrator", ["euler", "heun", "rk4"])
@pytest.mark.parametrize("preset", sorted(SCALINGS))
def test_one_step_equals_hand_written_step(rng, integrator, preset):
    """Euler: theta - dt eta m^beta / c^2 D grad R - dt lambda theta (gradient descent); Heun/RK4 likewise."""
    model, theta, X, y = _problem(rng, 9, 7, 3, "erf", True, **SCALINGS[preset])
    dyn = mf.Dynamics(dt=0.03, integrator=integrator, **DYNAMICS["layer_lr+decay"])
    flow = mf.particle_flow((X, y), model, dyn)
    state = flow.advance(flow.init(theta), 1)
    assert state.step == 1 and state.t == pytest.approx(0.03)
    want = _hand_step(integrator, theta, 0.03, lambda th: _ref_velocities(th, X, y, model, dyn))
    assert ref.rel_err(state.theta - theta, want - theta) < 1e-11
    assert ref.rel_err(state.theta, want) < 1e-13


def test_euler_step_is_gradient_descent_step(rng):
    """Written out in full for the mean-field preset: theta_1 = theta_0 - dt eta m D grad R - dt lambda theta_0."""
    model, theta, X, y = _problem(rng, 10, 6, 2, "tanh", True)
    dt, lr, lam, D = 0.05, 0.4, 0.2, np.array([2.0, 0.5, 0.5, 3.0])
    dyn = mf.Dynamics(dt=dt, lr=lr, weight_decay=lam, layer_lr=(2.0, 0.5, 3.0))
    flow = mf.particle_flow((X, y), model, dyn)
    theta1 = flow.advance(flow.init(theta), 1).theta
    grad = ref.grad_risk(theta, X, y, "tanh", bias=True)
    want = theta - dt * lr * 6 * D * grad - dt * lam * theta
    assert ref.rel_err(theta1 - theta, want - theta) < 1e-11


def test_advance_does_not_modify_its_input(rng):
    model, theta, X, y = _problem(rng, 5, 4, 2)
    flow = mf.particle_flow((X, y), model, mf.Dynamics(dt=0.1))
    s0 = flow.init(theta)
    keep = s0.theta.copy()
    s1 = flow.advance(s0, 3)
    np.testing.assert_array_equal(s0.theta, keep)
    assert s0.step == 0 and s1.step == 3 and s1.t == pytest.approx(0.3)
    s2 = flow.advance(s1, 0)
    assert s2.step == 3 and np.array_equal(s2.theta, s1.theta)


@pytest.mark.parametrize("activation, integrator", [("tanh", "euler"), ("relu", "euler"), ("softplus", "rk4")])
def test_risk_is_non_increasing_along_gradient_flow(rng, one_thread, activation, integrator):
    model, theta, X, y = _problem(rng, 20, 16, 3, activation, True)
    dyn = mf.Dynamics(dt=0.01, integrator=integrator, layer_lr=(1.0, 2.0, 0.5))
    flow = mf.particle_flow((X, y), model, dyn)
    state = flow.init(theta)
    risks = [mf.risk(state.theta, X, y, model)]
    for _ in range(300):
        state = flow.advance(state, 1)
        risks.append(mf.risk(state.theta, X, y, model))
    risks = np.array(risks)
    assert np.all(np.diff(risks) < 0.0)
    assert risks[-1] < 0.95 * risks[0]  # the flow did move


@pytest.fixture(scope="module")
def smooth_problem():
    rng = np.random.default_rng(1)
    model = mf.Model(d=2, m=4, activation="tanh", bias=True, sigma_b=0.5)
    theta = mf.init_particles(model, rng)
    X, y = rng.standard_normal((6, 2)), rng.standard_normal(6)

    def solve(integrator, dt, T=1.0):
        flow = mf.particle_flow((X, y), model, mf.Dynamics(dt=dt, integrator=integrator))
        before = numba.get_num_threads()
        numba.set_num_threads(1)  # thousands of tiny parallel launches: one thread (same bits, see below)
        try:
            return flow.advance(flow.init(theta), int(round(T / dt))).theta
        finally:
            numba.set_num_threads(before)

    return solve, solve("rk4", 1.0 / 2000)


@pytest.mark.parametrize(
    "integrator, dts, order",
    [("euler", (0.02, 0.01, 0.005), 1), ("heun", (0.05, 0.025, 0.0125), 2), ("rk4", (0.1, 0.05, 0.025), 4)],
)
def test_convergence_order(smooth_problem, integrator, dts, order):
    """Error at t = 1 against RK4 with dt = 1/2000; slope of log error against log dt."""
    solve, exact = smooth_problem
    errs = [np.max(np.abs(solve(integrator, dt) - exact)) for dt in dts]
    assert errs[-1] > 1e3 * 1e-13  # far above the reference's own error and round-off
    slope = np.polyfit(np.log(dts), np.log(errs), 1)[0]
    assert abs(slope - order) < 0.3


# ---------------------------------------------------------------------------------------------------------
# Langevin dynamics without data: an Ornstein-Uhlenbeck process


def _ou_flow(m, lam, tau, h, seed=11):
    """X = 0 with identity activation and no bias gives z = 0, f = 0 and, with y = 0, a zero data gradient:
    the velocity is exactly -lambda theta."""
    model = mf.Model(d=2, m=m, activation="identity")
    X, y = np.zeros((1, 2)), np.zeros(1)
    dyn = mf.Dynamics(dt=h, integrator="euler_maruyama", temperature=tau, weight_decay=lam, seed=seed)
    return model, mf.particle_flow((X, y), model, dyn)


def test_zero_data_gradient_is_pure_decay(rng):
    model, flow = _ou_flow(5, 0.7, 0.0, 0.1)
    theta = mf.init_particles(model, rng)
    X, y = flow.problem.X, flow.problem.y
    v = mf.velocities(theta, X, y, model, flow.dynamics)
    np.testing.assert_array_equal(v, -0.7 * theta)


def test_langevin_stationary_variance_is_tau_over_lambda(rng, one_thread):
    """Small dt: the stationary variance of each coordinate is tau / lambda, the mean is 0, and the
    correlation at lag s is exp(-lambda s) (all within 4 standard errors)."""
    m, lam, tau, h = 5000, 1.0, 0.5, 0.01
    model, flow = _ou_flow(m, lam, tau, h)
    state = flow.advance(flow.init(mf.init_particles(model, rng)), 1000)  # t = 10 = 10 / lambda
    x = state.theta.ravel()
    N = x.size
    var = x.var()
    assert abs(var / (tau / lam) - 1) < 4 * math.sqrt(2 / N)
    assert abs(x.mean()) < 4 * math.sqrt(tau / lam / N)
    lag = 50
    x2 = flow.advance(state, lag).theta.ravel()
    rho = np.corrcoef(x, x2)[0, 1]
    rho_exact = (1 - lam * h) ** lag
    assert abs(rho_exact - math.exp(-lam * lag * h)) < 2e-3
    assert abs(rho - rho_exact) < 4 * (1 - rho_exact**2) / math.sqrt(N)


def test_langevin_stationary_variance_of_euler_maruyama(rng, one_thread):
    """Large lambda dt: the variance is that of theta <- (1 - lambda h) theta + sqrt(2 tau h) xi,
    2 tau h / (1 - (1 - lambda h)^2), which differs from tau / lambda by 33% here."""
    m, lam, tau, h = 5000, 1.0, 0.5, 0.5
    model, flow = _ou_flow(m, lam, tau, h)
    x = flow.advance(flow.init(mf.init_particles(model, rng)), 60).theta.ravel()
    N = x.size
    var_em = 2 * tau * h / (1 - (1 - lam * h) ** 2)
    assert abs(x.var() / var_em - 1) < 4 * math.sqrt(2 / N)
    assert abs(x.var() / (tau / lam) - 1) > 10 * math.sqrt(2 / N)  # the test can tell the two apart
    assert abs(x.mean()) < 4 * math.sqrt(var_em / N)


# ---------------------------------------------------------------------------------------------------------
# SGD


def test_sgd_batches_are_uniform_and_average_to_full_batch(rng, one_thread):
    """Every SGD step is the Euler step of the risk on some B-subset of the data (found by enumeration);
    the subsets are uniform over all C(n, B); the mean SGD velocity converges to the full-batch velocity."""
    n, B, steps, dt = 6, 3, 2000, 0.01
    model, theta, X, y = _problem(rng, n, 3, 2, "tanh", True)
    dyn = mf.Dynamics(dt=dt, integrator="sgd", batch_size=B, seed=3, **DYNAMICS["layer_lr+decay"])
    flow = mf.particle_flow((X, y), model, dyn)
    subsets = list(itertools.combinations(range(n), B))
    cands = np.array([theta + dt * _ref_velocities(theta, X[list(s)], y[list(s)], model, dyn) for s in subsets])
    counts = np.zeros(len(subsets))
    moves = np.empty((steps,) + theta.shape)
    for s in range(steps):
        theta1 = flow.advance(flow.init(theta, step=s), 1).theta
        dist = np.max(np.abs(cands - theta1), axis=(1, 2))
        order = np.argsort(dist)
        assert dist[order[0]] < 1e-14 and dist[order[1]] > 1e-8
        counts[order[0]] += 1
        moves[s] = (theta1 - theta) / dt
    assert stats.chisquare(counts).pvalue > 1e-4
    full = mf.velocities(theta, X, y, model, dyn)
    se = moves.std(axis=0) / math.sqrt(steps)
    assert np.all(np.abs(moves.mean(axis=0) - full) < 5 * se)


def test_sgd_with_full_batch_is_euler(rng, one_thread):
    """batch_size = n: every step uses all points, so SGD is Euler (up to the summation order of the
    permuted batch, i.e. round-off)."""
    model, theta, X, y = _problem(rng, 11, 7, 3, "relu", True)
    kw = dict(dt=0.05, **DYNAMICS["layer_lr+decay"])
    euler = mf.particle_flow((X, y), model, mf.Dynamics(**kw))
    sgd = mf.particle_flow((X, y), model, mf.Dynamics(integrator="sgd", batch_size=11, **kw))
    a = euler.advance(euler.init(theta), 20).theta
    b = sgd.advance(sgd.init(theta), 20).theta
    assert ref.rel_err(b - theta, a - theta) < 1e-12


# ---------------------------------------------------------------------------------------------------------
# determinism and resumability

RUNS = {
    "euler": dict(integrator="euler"),
    "rk4": dict(integrator="rk4"),
    "euler_maruyama": dict(integrator="euler_maruyama", temperature=0.1),
    "sgd": dict(integrator="sgd", batch_size=17, temperature=0.05),
}

_THREAD_SCRIPT = textwrap.dedent(
    """
    import sys
    import numba
    import numpy as np
    import meanfield as mf
    import meanfield.threads

    meanfield.threads.SERIAL_BELOW = 0  # the parallel kernels at every size
    runs, out = eval(sys.argv[1]), sys.argv[2]
    rng = np.random.default_rng(5)
    model = mf.Model(d=3, m=96, activation="tanh", bias=True, sigma_b=0.5)
    theta = mf.init_particles(model, rng)
    X, y = rng.standard_normal((64, 3)), rng.standard_normal(64)
    for name, kw in runs.items():
        flow = mf.particle_flow((X, y), model, mf.Dynamics(dt=0.05, seed=9, **kw))
        np.save(f"{out}/{name}.npy", flow.advance(flow.init(theta), 30).theta)
    print(numba.get_num_threads())
    """
)


def test_bitwise_identical_with_1_and_2_threads(tmp_path):
    results = {}
    for threads in (1, 2):
        out = tmp_path / str(threads)
        out.mkdir()
        env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
        proc = subprocess.run(
            [sys.executable, "-c", _THREAD_SCRIPT, repr(RUNS), str(out)],
            env=env, capture_output=True, text=True, timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split()[-1] == str(threads)
        results[threads] = {name: np.load(out / f"{name}.npy") for name in RUNS}
    for name in RUNS:
        a, b = results[1][name], results[2][name]
        assert np.all(np.isfinite(a))
        assert a.tobytes() == b.tobytes(), name


@pytest.mark.parametrize("name", sorted(RUNS))
def test_repeatable_and_resumable(rng, one_thread, name):
    """Same run twice: identical. 2 x 50 steps == 1 x 100 steps == resume from (theta_50, step 50): bitwise."""
    model, theta, X, y = _problem(rng, 40, 12, 3, "tanh", True)
    flow = mf.particle_flow((X, y), model, mf.Dynamics(dt=0.02, seed=4, **RUNS[name]))
    one = flow.advance(flow.init(theta), 100)
    again = flow.advance(flow.init(theta), 100)
    half = flow.advance(flow.init(theta), 50)
    two = flow.advance(half, 50)
    resumed = flow.advance(flow.init(half.theta.copy(), step=50), 50)
    assert one.step == two.step == resumed.step == 100
    assert one.theta.tobytes() == again.theta.tobytes()
    assert one.theta.tobytes() == two.theta.tobytes()
    assert one.theta.tobytes() == resumed.theta.tobytes()
    if name in ("euler_maruyama", "sgd"):  # the seed matters
        other = mf.particle_flow((X, y), model, mf.Dynamics(dt=0.02, seed=5, **RUNS[name]))
        assert not np.array_equal(other.advance(other.init(theta), 100).theta, one.theta)


# ---------------------------------------------------------------------------------------------------------
# divergence, float32


def test_divergence_error_keeps_last_good_state(rng):
    model, theta, X, y = _problem(rng, 10, 8, 2, "quadratic", True)
    dt = 5.0
    flow = mf.particle_flow((X, y), model, mf.Dynamics(dt=dt))
    with pytest.raises(mf.DivergenceError) as exc:
        flow.advance(flow.init(theta), 1000)
    err = exc.value
    msg = str(err)
    assert f"step {err.step}" in msg and "smaller dt" in msg
    good = err.state
    assert good.step == err.step and good.t == pytest.approx(err.step * dt)
    assert np.all(np.isfinite(good.theta)) and np.max(np.abs(good.theta)) <= 1e10
    # it is exactly the state after err.step steps, and the next step is the one that fails
    np.testing.assert_array_equal(flow.advance(flow.init(theta), err.step).theta, good.theta)
    with pytest.raises(mf.DivergenceError) as again:
        flow.advance(good, 1)
    assert again.value.step == err.step


def test_float32_flow_agrees_with_float64(rng):
    kw = dict(d=3, m=20, activation="tanh", bias=True, sigma_b=0.5)
    m64, m32 = mf.Model(**kw), mf.Model(dtype="float32", **kw)
    theta = mf.init_particles(m32, rng).astype(np.float64)
    X = rng.standard_normal((15, 3)).astype(np.float32).astype(np.float64)
    y = rng.standard_normal(15).astype(np.float32).astype(np.float64)
    dyn = mf.Dynamics(dt=0.05, **DYNAMICS["layer_lr+decay"])
    v32 = mf.velocities(theta, X, y, m32, dyn)
    assert v32.dtype == np.float32
    assert 0 < ref.rel_err(v32, mf.velocities(theta, X, y, m64, dyn)) < 1e-5
    f32, f64 = mf.particle_flow((X, y), m32, dyn), mf.particle_flow((X, y), m64, dyn)
    a, b = f32.advance(f32.init(theta), 10).theta, f64.advance(f64.init(theta), 10).theta
    assert a.dtype == np.float32
    assert ref.rel_err(a - theta, b - theta) < 1e-5


# ---------------------------------------------------------------------------------------------------------
# bad inputs


@pytest.mark.parametrize(
    "kwargs, key, words",
    [
        (dict(dt=-0.1), "dynamics.dt", "> 0"),
        (dict(dt=0.0), "dynamics.dt", "> 0"),
        (dict(dt=float("nan")), "dynamics.dt", "> 0"),
        (dict(lr=0.0), "dynamics.lr", "> 0"),
        (dict(integrator="leapfrog"), "dynamics.integrator", "rk4"),
        (dict(integrator="rk4", temperature=0.1), "dynamics.integrator", "temperature"),
        (dict(integrator="heun", temperature=0.1), "dynamics.integrator", "temperature"),
        (dict(integrator="euler", temperature=0.1), "dynamics.integrator", "temperature"),
        (dict(temperature=-1.0), "dynamics.temperature", ">= 0"),
        (dict(weight_decay=-1.0), "dynamics.weight_decay", ">= 0"),
        (dict(integrator="sgd"), "dynamics.batch_size", "sgd"),
        (dict(integrator="sgd", batch_size=0), "dynamics.batch_size", "positive"),
        (dict(batch_size=4), "dynamics.batch_size", "sgd"),
        (dict(layer_lr=(1.0, 1.0)), "dynamics.layer_lr", "three"),
        (dict(layer_lr=(1.0, -1.0, 1.0)), "dynamics.layer_lr", ">= 0"),
        (dict(layer_lr=(1.0, float("inf"), 1.0)), "dynamics.layer_lr", ">= 0"),
        (dict(seed=-1), "dynamics.seed", "integer"),
    ],
)
def test_bad_dynamics_raises_config_error(kwargs, key, words):
    with pytest.raises(mf.ConfigError) as exc:
        mf.Dynamics(**kwargs)
    assert exc.value.key == key
    assert str(exc.value).startswith(key + " = ") and words in str(exc.value)


def test_bad_flow_inputs_raise_config_error(rng):
    model, theta, X, y = _problem(rng, 6, 5, 3)
    flow = mf.particle_flow((X, y), model, mf.Dynamics())
    Xnan = X.copy()
    Xnan[2, 1] = np.nan
    ynan = y.copy()
    ynan[0] = np.inf
    cases = [
        (lambda: mf.particle_flow((X[:, :2], y), model, mf.Dynamics()), "X"),
        (lambda: mf.particle_flow((Xnan, y), model, mf.Dynamics()), "X"),
        (lambda: mf.particle_flow((X, y[:5]), model, mf.Dynamics()), "y"),
        (lambda: mf.particle_flow((X, np.stack([y, y], 1)), model, mf.Dynamics()), "y"),
        (lambda: mf.particle_flow((X, ynan), model, mf.Dynamics()), "y"),
        (lambda: mf.particle_flow([X, y], model, mf.Dynamics()), "data"),
        (lambda: mf.particle_flow((X, y), model, mf.Dynamics(integrator="sgd", batch_size=7)),
         "dynamics.batch_size"),
        (lambda: flow.init(theta[:, :2]), "theta0"),
        (lambda: flow.init(theta[:3]), "theta0"),
        (lambda: flow.init(np.full_like(theta, np.nan)), "theta0"),
        (lambda: flow.init(theta, step=-1), "step"),
        (lambda: flow.advance(flow.init(theta), -2), "n_steps"),
        (lambda: flow.advance(flow.init(theta), 1.5), "n_steps"),
        (lambda: mf.velocities(theta.T, X, y, model), "theta"),
        (lambda: mf.velocities(theta, Xnan, y, model), "X"),
        (lambda: mf.velocities(theta, X, y[1:], model), "y"),
    ]
    for call, key in cases:
        with pytest.raises(mf.ConfigError) as exc:
            call()
        assert exc.value.key == key, (key, str(exc.value))
        assert str(exc.value).startswith(key + " = ")
    with pytest.raises(mf.ConfigError, match=r"at most n = 6"):
        mf.particle_flow((X, y), model, mf.Dynamics(integrator="sgd", batch_size=7))


# ---------------------------------------------------------------------------------------------------------
# per-layer rates: a rate of 0 freezes a layer; the standard-parameterisation mapping (docs/conventions.md)
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layer_lr, frozen", [((0.0, 1.0, 1.0), [0]), ((1.0, 0.0, 0.0), "hidden"),
                                              ((2.0, 0.5, 0.0), [-1])])
def test_zero_layer_rate_freezes_that_layer(rng, layer_lr, frozen):
    model, theta, X, y = _problem(rng, 9, 7, 3, "tanh", True)
    dyn = mf.Dynamics(lr=0.5, dt=0.05, integrator="rk4", layer_lr=layer_lr)
    end = mf.particle_flow((X, y), model, dyn).advance(mf.particle_flow((X, y), model, dyn).init(theta), 20).theta
    cols = list(range(1, model.p)) if frozen == "hidden" else frozen
    moving = [q for q in range(model.p) if q not in [c % model.p for c in cols]]
    assert np.array_equal(end[:, cols], theta[:, cols])  # bitwise: the frozen layer does not move at all
    assert np.all(np.abs(end[:, moving] - theta[:, moving]).max(0) > 1e-6)


def test_kernel_with_a_frozen_layer_drives_the_outputs(rng):
    """With layer_lr = (0, 1, 1) the outputs still move by df/dt = -(1/n) Theta (f - y), Theta the kernel of
    the hidden layer alone (empirical_ntk with the same rates): df/dt from a central difference along the
    velocity field; and the kernel is the full kernel minus the readout term."""
    model, theta, X, y = _problem(rng, 6, 40, 3, "tanh", True, scaling="ntk")
    dyn = mf.Dynamics(lr=0.8, layer_lr=(0.0, 1.0, 1.0))
    v = mf.velocities(theta, X, y, model, dyn)
    h = 1e-5
    dfdt = (mf.outputs(theta + h * v, X, model) - mf.outputs(theta - h * v, X, model)) / (2 * h)
    K = model_ntk(theta, X, model=model, dynamics=dyn)
    want = -K @ (mf.outputs(theta, X, model) - y) / X.shape[0]
    assert ref.rel_err(dfdt, want) < 1e-8
    full = model_ntk(theta, X, model=model, dynamics=mf.Dynamics(lr=0.8))
    readout = model_ntk(theta, X, model=model, dynamics=mf.Dynamics(lr=0.8, layer_lr=(1.0, 0.0, 0.0)))
    np.testing.assert_allclose(K + readout, full, rtol=1e-13, atol=1e-15 * np.abs(full).max())
    # infinite width: the same decomposition, and the readout term is eta * NNGP
    Ka = mf.analytic_ntk(X, activation="tanh", bias=True, sigma_b=0.5, lr=0.8, layer_lr=(0.0, 1.0, 1.0))
    Kf = mf.analytic_ntk(X, activation="tanh", bias=True, sigma_b=0.5, lr=0.8)
    np.testing.assert_allclose(Kf - Ka, 0.8 * mf.nngp(X, activation="tanh", bias=True, sigma_b=0.5),
                               rtol=1e-13, atol=1e-15 * np.abs(Kf).max())


@pytest.mark.parametrize("bias", [False, True])
def test_standard_parameterisation_mapping(rng, bias):
    """Plain gradient descent on f = sum_j at_j sigma(wt_j . x + bt_j) (at = a/sqrt(m), wt = w/sqrt(d), bt = b)
    is our `explicit` alpha = 1/2, beta = 0 flow with eta = eta_SP d and layer_lr = (m/d, 1, 1/d)."""
    n, m, d, eta_sp = 7, 6, 3, 0.3
    model, theta, X, y = _problem(rng, n, m, d, "tanh", bias, scaling=mf.get_scaling("explicit", alpha=0.5,
                                                                                     beta=0.0, c=1.0))
    a, W = theta[:, 0], theta[:, 1 : 1 + d]
    b = theta[:, -1] if bias else np.zeros(m)
    at, Wt, bt = a / math.sqrt(m), W / math.sqrt(d), b
    Z = X @ Wt.T + bt
    res = np.tanh(Z) @ at - y
    dsig = 1.0 - np.tanh(Z) ** 2
    g_a = np.tanh(Z).T @ res / n
    g_w = ((dsig * res[:, None]).T @ X) * at[:, None] / n
    g_b = (dsig * res[:, None]).sum(0) * at / n
    # velocities of the SP parameters, mapped back to ours: da = sqrt(m) dat, dw = sqrt(d) dwt, db = dbt
    want = [-eta_sp * math.sqrt(m) * g_a[:, None], -eta_sp * math.sqrt(d) * g_w]
    if bias:
        want.append(-eta_sp * g_b[:, None])
    dyn = mf.Dynamics(lr=eta_sp * d, layer_lr=(m / d, 1.0, 1.0 / d))
    assert ref.rel_err(mf.velocities(theta, X, y, model, dyn), np.hstack(want)) < 1e-13
