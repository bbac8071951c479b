"""Tests of meanfield.linearized (function space): the exact solution against a fine RK4 integration of the
linear ODE, its limits (t = 0, t = inf, lambda -> 0, singular kernels), the loss bound, and the lazy regime
against gradient flow of the actual particles."""

import math

import numpy as np
import pytest

from meanfield import linearized as lin
from meanfield import ntk
from meanfield.errors import ConfigError


def _rk4_linear_ode(K_all, n, y, f0_all, n_train, t_grid, dt):
    """Integrate d f/dt = -(1/n) K_all[:, :n_train] (f[:n_train] - y) for train and test outputs jointly."""

    def rhs(f):
        return -(K_all[:, :n_train] @ (f[:n_train] - y)) / n

    f = f0_all.copy()
    t = 0.0
    out = []
    for t_target in t_grid:
        steps = int(round((t_target - t) / dt))
        for _ in range(steps):
            k1 = rhs(f)
            k2 = rhs(f + 0.5 * dt * k1)
            k3 = rhs(f + 0.5 * dt * k2)
            k4 = rhs(f + dt * k3)
            f = f + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        t = t_target
        out.append(f.copy())
    return np.array(out)


def _problem(rng, activation, n, n_test, d, m=300):
    X_all = rng.normal(size=(n + n_test, d))
    theta = np.hstack([rng.normal(size=(m, 1)), rng.normal(size=(m, d))])
    K_all = ntk.empirical_ntk(theta, X_all, X_all[:n], activation=activation, lr=2.0)
    return K_all, rng.normal(size=n), rng.normal(size=n + n_test)


@pytest.mark.parametrize("activation, d", [("tanh", 4), ("identity", 2)], ids=["full-rank", "singular"])
def test_function_space_solution_matches_rk4(activation, d):
    rng = np.random.default_rng(0)
    n, n_test = 12, 5
    K_all, y, f0_all = _problem(rng, activation, n, n_test, d)
    if activation == "identity":  # rank <= d: a genuinely singular kernel
        assert np.linalg.eigvalsh(K_all[:n])[0] < 1e-12 * np.linalg.eigvalsh(K_all[:n])[-1]
    t_grid = [0.5, 2.0, 6.0]
    ode = _rk4_linear_ode(K_all, n, y, f0_all, n, t_grid, dt=2e-3)
    predict = lin.function_space(K_all[:n], y, f0_all[:n])
    pred = predict(np.array(t_grid), K_all[n:], f0_all[n:])
    assert pred.train.shape == (3, n) and pred.test.shape == (3, n_test)
    np.testing.assert_allclose(pred.train, ode[:, :n], rtol=0, atol=1e-8)
    np.testing.assert_allclose(pred.test, ode[:, n:], rtol=0, atol=1e-8)
    # scalar t returns one snapshot
    one = predict(2.0, K_all[n:], f0_all[n:])
    np.testing.assert_allclose(one.train, pred.train[1], rtol=0, atol=1e-14)
    np.testing.assert_allclose(one.test, pred.test[1], rtol=0, atol=1e-14)


def test_initial_values_train_as_test_and_multi_output():
    rng = np.random.default_rng(1)
    n = 8
    K_all, y, f0 = _problem(rng, "erf", n, 0, 3)
    K = K_all[:n]
    predict = lin.function_space(K, y, f0[:n])
    p0 = predict(0.0, K, f0[:n])
    np.testing.assert_array_equal(p0.train, y + (p0.train - y))  # shape and finiteness
    np.testing.assert_allclose(p0.train, f0[:n], rtol=0, atol=1e-13)
    np.testing.assert_allclose(p0.test, f0[:n], rtol=0, atol=1e-15)
    for t in (0.3, 4.0, np.inf):  # the training points, passed as test points, follow the training outputs
        p = predict(t, K, f0[:n])
        np.testing.assert_allclose(p.test, p.train, rtol=0, atol=1e-11)
    assert predict(1.0).test is None
    # two output columns evolve independently
    Y = np.column_stack([y, -2 * y + 1])
    F0 = np.column_stack([f0[:n], np.zeros(n)])
    multi = lin.function_space(K, Y, F0)(np.array([0.5, 3.0]))
    np.testing.assert_allclose(multi.train[..., 0], lin.function_space(K, y, f0[:n])(np.array([0.5, 3.0])).train,
                               rtol=0, atol=1e-13)
    np.testing.assert_allclose(multi.train[..., 1], lin.function_space(K, Y[:, 1])(np.array([0.5, 3.0])).train,
                               rtol=0, atol=1e-13)


def test_infinite_time_is_kernel_regression():
    rng = np.random.default_rng(2)
    n, n_test = 10, 4
    K_all, y, f0 = _problem(rng, "tanh", n, n_test, 5)
    K, Ks = K_all[:n], K_all[n:]
    p = lin.function_space(K, y, f0[:n])(np.inf, Ks, f0[n:])
    np.testing.assert_allclose(p.train, y, rtol=0, atol=1e-9)
    want = f0[n:] - Ks @ np.linalg.solve(K, f0[:n] - y)
    np.testing.assert_allclose(p.test, want, rtol=0, atol=1e-9)
    # a long finite time approaches it
    late = lin.function_space(K, y, f0[:n])(1e4 * n / np.linalg.eigvalsh(K)[0], Ks, f0[n:])
    np.testing.assert_allclose(late.test, want, rtol=0, atol=1e-9)


def test_infinite_time_with_singular_kernel_is_the_pseudo_inverse():
    rng = np.random.default_rng(3)
    n, n_test, d = 9, 3, 2
    K_all, y, f0 = _problem(rng, "identity", n, n_test, d)  # rank 2
    K, Ks = K_all[:n], K_all[n:]
    p = lin.function_space(K, y, f0[:n])(np.inf, Ks, f0[n:])
    r0 = f0[:n] - y
    pinv = np.linalg.pinv(K, rcond=1e-10, hermitian=True)
    np.testing.assert_allclose(p.test, f0[n:] - Ks @ pinv @ r0, rtol=0, atol=1e-9)
    # train: the residual keeps its component in the null space, loses the rest
    np.testing.assert_allclose(p.train - y, r0 - K @ pinv @ r0, rtol=0, atol=1e-9)
    assert np.all(np.isfinite(p.train)) and np.all(np.isfinite(p.test))


def test_decay_factors_zero_eigenvalue_limit():
    t = np.array([0.0, 0.1, 3.0, 50.0])
    n = 7.0
    lam = np.array([-1e-15, 0.0, 1e-300, 1e-12, 1e-3, 2.0])
    decay, integral = lin.decay_factors(lam, t, n)
    lam_c = np.maximum(lam, 0)
    # small lambda: (1 - e^{-x})/lambda = (t/n)(1 - x/2 + x^2/6), x = lambda t / n
    x = lam_c[None, :4] * t[:, None] / n
    np.testing.assert_allclose(integral[:, :4], t[:, None] / n * (1 - x / 2 + x * x / 6), rtol=1e-15, atol=0)
    np.testing.assert_allclose(integral[:, 4:], -np.expm1(-lam_c[None, 4:] * t[:, None] / n) / lam_c[None, 4:],
                               rtol=1e-15)
    np.testing.assert_allclose(decay, np.exp(-lam_c[None, :] * t[:, None] / n), rtol=1e-15)
    d_inf, i_inf = lin.decay_factors(lam, np.array([np.inf]), n, cutoff=1e-10)
    np.testing.assert_array_equal(d_inf[0], [1, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(i_inf[0], [0, 0, 0, 0, 1e3, 0.5])


def test_loss_bound_holds_and_is_attained_on_the_smallest_eigenvector():
    rng = np.random.default_rng(4)
    n = 10
    K_all, y, f0 = _problem(rng, "relu", n, 0, 3)
    K = K_all[:n]
    lam_min = ntk.lambda_min(K)
    t = np.linspace(0, 40, 81)
    predict = lin.function_space(K, y, f0[:n])
    loss = 0.5 * np.mean((predict(t).train - y) ** 2, axis=1)
    bound = lin.loss_bound(t, loss[0], lam_min, n)
    assert np.all(loss <= bound * (1 + 1e-12))
    assert np.all(np.diff(loss) < 0)
    v = np.linalg.eigh(K)[1][:, 0]
    f0_min = y + 0.3 * v  # residual along the smallest eigenvector: equality
    loss_min = 0.5 * np.mean((lin.function_space(K, y, f0_min)(t).train - y) ** 2, axis=1)
    np.testing.assert_allclose(loss_min, lin.loss_bound(t, loss_min[0], lam_min, n), rtol=1e-9)
    assert lin.loss_bound(np.inf, 1.0, 0.0, n) == 1.0 and lin.loss_bound(np.inf, 1.0, 0.5, n) == 0.0


def test_function_space_rejects_bad_input():
    K = np.eye(3)
    with pytest.raises(ConfigError, match="K_train"):
        lin.function_space(np.ones((3, 2)), np.zeros(3))
    with pytest.raises(ConfigError, match="y"):
        lin.function_space(K, np.zeros(4))
    with pytest.raises(ConfigError, match="f0_train"):
        lin.function_space(K, np.zeros(3), np.zeros(2))
    predict = lin.function_space(K, np.zeros(3))
    with pytest.raises(ConfigError, match="t"):
        predict(-1.0)
    with pytest.raises(ConfigError, match="K_test_train"):
        predict(1.0, np.ones((2, 4)))
    with pytest.raises(ConfigError, match="f0_test"):
        predict(1.0, f0_test=np.zeros(2))


def _particle_gradient_flow(theta, X, y, t_end, dt):
    """RK4 on dtheta/dt = -eta m^beta/c^2 grad R for tanh, ntk preset (alpha = 1/2, beta = 0, c = 1), no bias."""
    m, p = theta.shape
    d = p - 1
    n = X.shape[0]

    def velocity(th):
        a, W = th[:, 0], th[:, 1:]
        z = X @ W.T / math.sqrt(d)
        s = np.tanh(z)
        r = s @ a / math.sqrt(m) - y
        ds = 1 - s * s
        grad_a = s.T @ r / (n * math.sqrt(m))
        grad_w = ((ds * r[:, None]) * a).T @ X / (n * math.sqrt(m) * math.sqrt(d))
        return -np.column_stack([grad_a, grad_w])

    th = theta.copy()
    for _ in range(int(round(t_end / dt))):
        k1 = velocity(th)
        k2 = velocity(th + 0.5 * dt * k1)
        k3 = velocity(th + 0.5 * dt * k2)
        k4 = velocity(th + dt * k3)
        th = th + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return th


def _true_outputs(theta, X):
    m, d = theta.shape[0], theta.shape[1] - 1
    return np.tanh(X @ theta[:, 1:].T / math.sqrt(d)) @ theta[:, 0] / math.sqrt(m)


def test_linearised_prediction_agrees_with_particle_flow_to_second_order_in_time():
    """Same initial particles: f(0) and df/dt(0) coincide exactly, so the gap grows like t^2 at small t."""
    d, n, m = 3, 5, 64
    rng = np.random.default_rng(20)
    X, X_test = rng.normal(size=(n, d)), rng.normal(size=(3, d))
    y = np.sin(X[:, 0])
    theta0 = rng.normal(size=(m, d + 1))
    predict = lin.function_space_from_particles(theta0, X, y, X_test, activation="tanh", scaling="ntk")
    np.testing.assert_allclose(predict(0.0).test, _true_outputs(theta0, X_test), rtol=0, atol=1e-14)
    gaps = []
    for t in (0.1, 0.05):
        th = _particle_gradient_flow(theta0, X, y, t, dt=t / 20)
        gaps.append(np.max(np.abs(predict(t).test - _true_outputs(th, X_test))))
    assert 3.5 < gaps[0] / gaps[1] < 4.5, gaps


def test_lazy_regime_matches_particle_flow_as_width_grows():
    """Under ntk scaling the linearised prediction tracks the real gradient flow ever better as m grows (at least
    like m^-1/2; for smooth activations the gap is closer to m^-1)."""
    d, n, t_end, seeds = 3, 5, 3.0, 6
    X = np.random.default_rng(10).normal(size=(n, d))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1]
    X_test = np.random.default_rng(11).normal(size=(3, d))
    errs = []
    widths = (128, 8192)
    for m in widths:
        e = 0.0
        for seed in range(seeds):
            rng = np.random.default_rng([seed, m])
            theta0 = rng.normal(size=(m, d + 1))
            p = lin.function_space_from_particles(theta0, X, y, X_test, activation="tanh", scaling="ntk")(t_end)
            th = _particle_gradient_flow(theta0, X, y, t_end, dt=0.05)
            e += np.sqrt(np.mean((p.test - _true_outputs(th, X_test)) ** 2)) / seeds
        errs.append(e)
    assert errs[0] / errs[1] > math.sqrt(widths[1] / widths[0]), errs
