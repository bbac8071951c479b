"""Tests of meanfield.ntk: empirical kernel vs finite-difference Jacobians, m^-1/2 convergence to the analytic
kernel, closed forms vs independent quadrature, the depth recursion, Monte Carlo NNGP, kernel observables."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import integrate, special

from meanfield import ntk
from meanfield.activations import ACTIVATIONS, custom, get_activation
from meanfield.errors import ConfigError
from meanfield.scaling import get_scaling

SIN = custom(lambda z: math.sin(z), lambda z: math.cos(z), name="sin")
ALL_ACTIVATIONS = list(ACTIVATIONS) + [SIN]
PRESETS = {
    "mean_field": get_scaling("mean_field"),
    "ntk": get_scaling("ntk"),
    "lazy": get_scaling("lazy", lazy_scale=3.0),
    "explicit": get_scaling("explicit", alpha=0.7, beta=0.3, c=2.0),
}


def _init(rng, m, d, bias, sigma_a=1.0, sigma_w=1.0, sigma_b=1.0):
    cols = [sigma_a * rng.normal(size=(m, 1)), sigma_w * rng.normal(size=(m, d))]
    if bias:
        cols.append(sigma_b * rng.normal(size=(m, 1)))
    return np.hstack(cols)


# ---------------------------------------------------------------------------------------------------------
# slow, obvious references
# ---------------------------------------------------------------------------------------------------------


def _ref_outputs(theta, X, act, sc, bias):
    """f(x) = c m^-alpha sum_j a_j sigma(w_j.x/sqrt(d) + b_j), by explicit arrays."""
    m, p = theta.shape
    d = p - 1 - int(bias)
    sig = np.vectorize(lambda z: float(act.sigma(float(z))), otypes=[float])
    z = X @ theta[:, 1 : 1 + d].T / math.sqrt(d)
    if bias:
        z = z + theta[:, -1]
    return sc.c * m ** (-sc.alpha) * sig(z) @ theta[:, 0]


def _ref_jacobian(theta, X, act, sc, bias, eps=1e-5):
    """d f(x_i) / d theta_{j,k} by central differences: shape (n, m * p)."""
    flat = theta.reshape(-1).copy()
    J = np.empty((X.shape[0], flat.size))
    for k in range(flat.size):
        e = np.zeros_like(flat)
        e[k] = eps
        fp = _ref_outputs((flat + e).reshape(theta.shape), X, act, sc, bias)
        fm = _ref_outputs((flat - e).reshape(theta.shape), X, act, sc, bias)
        J[:, k] = (fp - fm) / (2 * eps)
    return J


def _ref_ntk(theta, X1, X2, act, sc, lr, layer_lr, bias):
    """eta m^beta / c^2 * J1 D J2^T: the kernel of df/dt = J dtheta/dt under the core dynamics."""
    m, p = theta.shape
    d = p - 1 - int(bias)
    diag = [layer_lr[0]] + [layer_lr[1]] * d + ([layer_lr[2]] if bias else [])
    D = np.tile(np.array(diag), m)
    J1 = _ref_jacobian(theta, X1, act, sc, bias)
    J2 = _ref_jacobian(theta, X2, act, sc, bias)
    return lr * m**sc.beta / sc.c**2 * (J1 * D) @ J2.T


def _rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


# ---------------------------------------------------------------------------------------------------------
# empirical kernel
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("activation", ALL_ACTIVATIONS, ids=lambda a: get_activation(a).name)
@pytest.mark.parametrize("bias", [False, True])
def test_empirical_ntk_matches_finite_difference_jacobian(activation, preset, bias):
    rng = np.random.default_rng(11)
    m, d = 7, 3
    theta = _init(rng, m, d, bias)
    X1, X2 = rng.normal(size=(4, d)), rng.normal(size=(5, d))
    act, sc = get_activation(activation), PRESETS[preset]
    lr, layer_lr = 0.9, (0.7, 1.3, 0.4)
    K = ntk.empirical_ntk(theta, X1, X2, activation=act, scaling=sc, lr=lr, layer_lr=layer_lr, bias=bias)
    K_ref = _ref_ntk(theta, X1, X2, act, sc, lr, layer_lr, bias)
    assert K.shape == (4, 5)
    assert _rel(K, K_ref) < 1e-7


@pytest.mark.parametrize("preset", list(PRESETS))
def test_kernel_drives_outputs_under_gradient_flow(preset):
    """df(x)/dt computed from dtheta/dt = -eta m^beta/c^2 D grad R (all by finite differences) equals
    -(1/n) Theta(x, X)(f(X) - y): the defining property of the kernel's normalisation."""
    rng = np.random.default_rng(5)
    m, d, n, bias = 6, 2, 5, True
    act, sc = get_activation("tanh"), PRESETS[preset]
    lr, layer_lr = 1.7, (0.5, 2.0, 1.5)
    theta = _init(rng, m, d, bias)
    X, y, Xs = rng.normal(size=(n, d)), rng.normal(size=n), rng.normal(size=(3, d))

    def risk(th):
        r = _ref_outputs(th, X, act, sc, bias) - y
        return 0.5 * np.mean(r**2)

    eps = 1e-5
    grad = np.zeros_like(theta)
    for idx in np.ndindex(theta.shape):
        e = np.zeros_like(theta)
        e[idx] = eps
        grad[idx] = (risk(theta + e) - risk(theta - e)) / (2 * eps)
    D = np.array([layer_lr[0]] + [layer_lr[1]] * d + [layer_lr[2]])
    velocity = -lr * m**sc.beta / sc.c**2 * grad * D
    h = 1e-5
    dfdt = (_ref_outputs(theta + h * velocity, Xs, act, sc, bias)
            - _ref_outputs(theta - h * velocity, Xs, act, sc, bias)) / (2 * h)
    K = ntk.empirical_ntk(theta, Xs, X, activation=act, scaling=sc, lr=lr, layer_lr=layer_lr, bias=bias)
    residual = _ref_outputs(theta, X, act, sc, bias) - y
    predicted = -(K @ residual) / n
    assert np.max(np.abs(dfdt - predicted)) < 1e-7 * np.max(np.abs(predicted))


def test_empirical_ntk_blocks_symmetry_and_width_argument():
    rng = np.random.default_rng(2)
    m, d = 37, 4
    theta = _init(rng, m, d, True)
    X = rng.normal(size=(11, d))
    kw = dict(activation="erf", scaling="ntk", bias=True, layer_lr=(1.0, 0.5, 2.0))
    K = ntk.empirical_ntk(theta, X, **kw)
    assert np.array_equal(K, K.T)
    for block in (1, 3, 5, 11, 100):
        np.testing.assert_allclose(ntk.empirical_ntk(theta, X, block=block, **kw), K, rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(ntk.empirical_ntk(theta, X, X, block=block, **kw), K, rtol=1e-13, atol=1e-14)
    # m enters only through m^(beta - 2 alpha) = m^-1 for the ntk preset
    np.testing.assert_allclose(ntk.empirical_ntk(theta, X, m=2 * m, **kw), K / 2, rtol=1e-14)
    # the ntk and mean_field presets share the kernel (both average over particles); c cancels
    kw.pop("scaling")
    for sc in ("mean_field", get_scaling("lazy", lazy_scale=10.0)):
        np.testing.assert_allclose(ntk.empirical_ntk(theta, X, scaling=sc, **kw), K, rtol=1e-14)


def test_empirical_ntk_rejects_bad_input():
    theta = np.ones((3, 4))
    X = np.ones((2, 3))
    with pytest.raises(ConfigError, match="X1"):
        ntk.empirical_ntk(theta, np.ones((2, 5)))
    with pytest.raises(ConfigError, match="layer_lr"):
        ntk.empirical_ntk(theta, X, layer_lr=(1, 1))
    with pytest.raises(ConfigError, match="lr"):
        ntk.empirical_ntk(theta, X, lr=-1.0)
    with pytest.raises(ConfigError, match="activation"):
        ntk.empirical_ntk(theta, X, activation="gelu")
    with pytest.raises(ConfigError, match="theta"):
        ntk.empirical_ntk(np.full((3, 4), np.nan), X)


_THREAD_SCRIPT = """
import sys, numpy as np
from meanfield import ntk
rng = np.random.default_rng(0)
theta = rng.normal(size=(301, 5)); X = rng.normal(size=(23, 3))
K = ntk.empirical_ntk(theta, X, activation='tanh', bias=True)
E = ntk.gaussian_expectations('tanh', rng.uniform(0.1, 2, 50), 1.0, rng.uniform(-0.3, 0.3, 50), quad_points=40)
sys.stdout.write(K.tobytes().hex()[:20000] + E[0].tobytes().hex() + E[1].tobytes().hex())
"""


def test_numba_kernels_do_not_depend_on_thread_count():
    outs = []
    for threads in ("1", "2"):
        env = dict(os.environ, NUMBA_NUM_THREADS=threads, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
                   MKL_NUM_THREADS="1")
        res = subprocess.run([sys.executable, "-c", _THREAD_SCRIPT], env=env, capture_output=True, text=True,
                             check=True)
        outs.append(res.stdout)
    assert outs[0] == outs[1]


# ---------------------------------------------------------------------------------------------------------
# convergence of the empirical kernel at initialisation to the analytic one
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "activation, bias, scaling",
    [("relu", True, "mean_field"), ("erf", False, "ntk"), ("tanh", True, "ntk"), (SIN, False, "mean_field")],
    ids=["relu", "erf", "tanh", "custom-sin"],
)
def test_empirical_ntk_converges_at_rate_m_to_minus_half(activation, bias, scaling):
    d, n, seeds = 3, 4, 8
    sig = dict(sigma_a=1.3, sigma_w=0.8, sigma_b=0.6)
    kw = dict(lr=0.7, layer_lr=(1.5, 0.5, 2.0), bias=bias)
    X = np.random.default_rng(99).normal(size=(n, d))
    K_star = ntk.analytic_ntk(X, activation=activation, **sig, **kw)
    widths = 2 ** np.arange(6, 15)
    errors = np.zeros(len(widths))
    for k, m in enumerate(widths):
        for seed in range(seeds):
            rng = np.random.default_rng([seed, int(m)])
            theta = _init(rng, int(m), d, bias, **sig)
            K = ntk.empirical_ntk(theta, X, activation=activation, scaling=scaling, **kw)
            errors[k] += _rel(K, K_star) / seeds
    slope = np.polyfit(np.log(widths), np.log(errors), 1)[0]
    assert abs(slope + 0.5) < 0.15, (slope, errors)
    assert errors[-1] < 0.05


# ---------------------------------------------------------------------------------------------------------
# Gaussian expectations: closed forms vs independent quadrature
# ---------------------------------------------------------------------------------------------------------

_TRIPLES = [(1.0, 1.0, 1.0), (1.0, 1.0, -1.0), (0.7, 1.9, 0.3), (2.5, 0.4, -0.9), (1.3, 1.3, 0.0),
            (0.2, 3.0, 0.77), (1.0, 2.0, math.sqrt(2.0) * 0.999999)]


def _relu_reference(q1, q2, c):
    """1-D adaptive quadrature over xi_1 > 0 of the exact inner Gaussian integrals in xi_2."""
    rho = c / math.sqrt(q1 * q2)
    s = math.sqrt(max(1.0 - rho * rho, 0.0))
    pdf = lambda x: math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)  # noqa: E731

    def inner_relu(x):  # E[relu(rho x + s xi)]
        mu = rho * x
        if s == 0.0:
            return max(mu, 0.0)
        return mu * special.ndtr(mu / s) + s * pdf(mu / s)

    def inner_step(x):  # P(rho x + s xi > 0)
        if s == 0.0:
            return float(rho * x > 0)
        return special.ndtr(rho * x / s)

    opts = dict(epsabs=1e-14, epsrel=1e-13, limit=200)
    ess = integrate.quad(lambda x: pdf(x) * math.sqrt(q1) * x * math.sqrt(q2) * inner_relu(x), 0, np.inf, **opts)[0]
    edd = integrate.quad(lambda x: pdf(x) * inner_step(x), 0, np.inf, **opts)[0]
    return ess, edd


def _dblquad_reference(f, df, q1, q2, c):
    """E[f(u)f(v)], E[df(u)df(v)] by nested adaptive quadrature over the standardised Gaussian plane."""
    rho = c / math.sqrt(q1 * q2)
    s = math.sqrt(max(1.0 - rho * rho, 0.0))
    pdf = lambda x: math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)  # noqa: E731
    opts = dict(epsabs=1e-13, epsrel=1e-12, limit=200)
    out = []
    for g in (f, df):
        def inner(x1, g=g):
            u = math.sqrt(q1) * x1
            val = integrate.quad(lambda x2: pdf(x2) * g(math.sqrt(q2) * (rho * x1 + s * x2)), -12, 12, **opts)[0]
            return pdf(x1) * g(u) * val
        out.append(integrate.quad(inner, -12, 12, **opts)[0])
    return tuple(out)


@pytest.mark.parametrize("q1, q2, c", _TRIPLES)
def test_relu_closed_form_against_quadrature(q1, q2, c):
    ess, edd = ntk.gaussian_expectations("relu", q1, q2, c)
    ref = _relu_reference(q1, q2, c)
    assert abs(ess - ref[0]) < 1e-8 and abs(edd - ref[1]) < 1e-8


@pytest.mark.parametrize("name", ["erf", "identity", "quadratic"])
def test_smooth_closed_forms_against_gauss_hermite(name):
    q1, q2, c = (np.array(v) for v in zip(*_TRIPLES))
    closed = ntk.gaussian_expectations(name, q1, q2, c, method="closed")
    quad = ntk.gaussian_expectations(name, q1, q2, c, method="quadrature")
    np.testing.assert_allclose(closed[0], quad[0], rtol=0, atol=1e-8)
    np.testing.assert_allclose(closed[1], quad[1], rtol=0, atol=1e-8)


def test_erf_closed_form_against_adaptive_quadrature():
    f = math.erf
    df = lambda z: 2 / math.sqrt(math.pi) * math.exp(-z * z)  # noqa: E731
    for q1, q2, c in _TRIPLES[2:5]:
        ref = _dblquad_reference(f, df, q1, q2, c)
        got = ntk.gaussian_expectations("erf", q1, q2, c, method="closed")
        assert abs(got[0] - ref[0]) < 1e-8 and abs(got[1] - ref[1]) < 1e-8


def test_gauss_hermite_for_tanh_against_adaptive_quadrature():
    df = lambda z: 1 - math.tanh(z) ** 2  # noqa: E731
    for q1, q2, c in _TRIPLES[2:4]:
        ref = _dblquad_reference(math.tanh, df, q1, q2, c)
        got = ntk.gaussian_expectations("tanh", q1, q2, c)
        assert abs(got[0] - ref[0]) < 1e-8 and abs(got[1] - ref[1]) < 1e-8


def test_custom_activation_quadrature_against_closed_form():
    """sin: E[sin u sin v] = e^{-(q1+q2)/2} sinh c, E[cos u cos v] = e^{-(q1+q2)/2} cosh c."""
    q1, q2, c = (np.array(v) for v in zip(*_TRIPLES))
    ess, edd = ntk.gaussian_expectations(SIN, q1, q2, c)
    np.testing.assert_allclose(ess, np.exp(-(q1 + q2) / 2) * np.sinh(c), rtol=0, atol=1e-12)
    np.testing.assert_allclose(edd, np.exp(-(q1 + q2) / 2) * np.cosh(c), rtol=0, atol=1e-12)


def test_degenerate_variances():
    # z = 0 exactly on both sides (x = 0, no bias): relu(0) = relu'(0) = 0, erf'(0)^2 = 4/pi, tanh'(0) = 1
    for name, want in (("relu", (0.0, 0.0)), ("erf", (0.0, 4 / math.pi)), ("tanh", (0.0, 1.0))):
        got = ntk.gaussian_expectations(name, 0.0, 0.0, 0.0)
        np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-14)
    # one side degenerate: E[erf'(0) erf'(v)] = (4/pi) / sqrt(1 + 2 q2)
    got = ntk.gaussian_expectations("erf", 0.0, 1.3, 0.0)
    np.testing.assert_allclose(got, (0.0, 4 / math.pi / math.sqrt(3.6)), rtol=1e-14, atol=1e-14)
    got = ntk.gaussian_expectations("erf", 0.0, 1.3, 0.0, method="quadrature")
    np.testing.assert_allclose(got, (0.0, 4 / math.pi / math.sqrt(3.6)), rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------------------------------------
# analytic kernels: two-layer form, normalised relu, depth recursion, Monte Carlo NNGP
# ---------------------------------------------------------------------------------------------------------


def _relu_arccos(X1, X2, sw2, sb2):
    q1 = sw2 * np.sum(X1**2, 1)[:, None] / X1.shape[1] + sb2
    q2 = sw2 * np.sum(X2**2, 1)[None, :] / X1.shape[1] + sb2
    cov = sw2 * X1 @ X2.T / X1.shape[1] + sb2
    th = np.arccos(np.clip(cov / np.sqrt(q1 * q2), -1, 1))
    return (np.sqrt(q1 * q2) * (np.sin(th) + (np.pi - th) * np.cos(th)) / (2 * np.pi), (np.pi - th) / (2 * np.pi))


@pytest.mark.parametrize("bias", [False, True])
def test_depth_one_recursion_is_the_two_layer_closed_form(bias):
    rng = np.random.default_rng(3)
    d = 4
    X1, X2 = rng.normal(size=(5, d)), rng.normal(size=(3, d))
    sa, sw, sb, lr, (ea, ew, eb) = 1.2, 0.9, 0.5, 0.8, (1.5, 0.7, 2.5)
    ess, edd = _relu_arccos(X1, X2, sw**2, sb**2 if bias else 0.0)
    lin = ew * X1 @ X2.T / d + (eb if bias else 0.0)
    want = lr * (ea * ess + sa**2 * edd * lin)
    got = ntk.analytic_ntk(X1, X2, "relu", sigma_a=sa, sigma_w=sw, sigma_b=sb, bias=bias, lr=lr,
                           layer_lr=(ea, ew, eb), depth=1)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(ntk.nngp(X1, X2, "relu", sigma_a=sa, sigma_w=sw, sigma_b=sb, bias=bias),
                               sa**2 * ess, rtol=1e-12)


def test_normalised_relu_diagonal_value_two():
    rng = np.random.default_rng(4)
    d = 6
    X = rng.normal(size=(5, d))
    X *= math.sqrt(d) / np.linalg.norm(X, axis=1, keepdims=True)  # |x| = sqrt(d)
    K = ntk.analytic_ntk(X, activation="relu", activation_scale=math.sqrt(2))
    np.testing.assert_allclose(np.diag(K), 2.0, rtol=1e-14)
    np.testing.assert_allclose(np.diag(ntk.nngp(X, activation="relu", activation_scale=math.sqrt(2))), 1.0,
                               rtol=1e-14)
    # the same kernel as plain relu with sigma_a^2 = 2 and eta_a = 2 (what a particle model can simulate)
    np.testing.assert_allclose(ntk.analytic_ntk(X, activation="relu", sigma_a=math.sqrt(2), layer_lr=(2, 1, 1)),
                               K, rtol=1e-13, atol=1e-15)
    # plain relu with unit multipliers: 1/2 + 1/2
    np.testing.assert_allclose(np.diag(ntk.analytic_ntk(X, activation="relu")), 1.0, rtol=1e-14)


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_deep_linear_network_kernel(depth):
    """Identity activation, unit variances and multipliers: Sigma = x.x'/d at every layer, Theta = (L+1) x.x'/d."""
    rng = np.random.default_rng(depth)
    X = rng.normal(size=(4, 3))
    np.testing.assert_allclose(ntk.analytic_ntk(X, activation="identity", depth=depth),
                               (depth + 1) * X @ X.T / 3, rtol=1e-13)
    np.testing.assert_allclose(ntk.nngp(X, activation="identity", depth=depth), X @ X.T / 3, rtol=1e-13)


def test_depth_two_relu_kernel_against_monte_carlo_network():
    """Empirical NTK of finite three-layer relu networks (per-layer formula, explicit backprop) around the
    analytic depth-2 kernel, with non-trivial variances and multipliers."""
    rng = np.random.default_rng(8)
    d, N, seeds = 3, 1024, 6
    sa, sw, sb, lr, (ea, ew, eb) = 1.1, 1.3, 0.4, 0.6, (0.8, 1.7, 1.2)
    X = rng.normal(size=(4, d))
    K_star = ntk.analytic_ntk(X, activation="relu", sigma_a=sa, sigma_w=sw, sigma_b=sb, bias=True, lr=lr,
                              layer_lr=(ea, ew, eb), depth=2)
    K_mc = np.zeros_like(K_star)
    for _ in range(seeds):
        W1, b1 = sw * rng.normal(size=(N, d)), sb * rng.normal(size=N)
        W2, b2 = sw * rng.normal(size=(N, N)), sb * rng.normal(size=N)
        a = sa * rng.normal(size=N)
        z1 = X @ W1.T / math.sqrt(d) + b1
        h1 = np.maximum(z1, 0)
        z2 = h1 @ W2.T / math.sqrt(N) + b2
        h2 = np.maximum(z2, 0)
        # f = a.h2 / sqrt(N); backprop deltas df/dz
        g2 = (a / math.sqrt(N)) * (z2 > 0)
        g1 = (g2 @ W2 / math.sqrt(N)) * (z1 > 0)
        K = ea * h2 @ h2.T / N
        K += (g2 @ g2.T) * (ew * h1 @ h1.T / N + eb)
        K += (g1 @ g1.T) * (ew * X @ X.T / d + eb)
        K_mc += lr * K / seeds
    assert _rel(K_mc, K_star) < 0.03
    # the depth-1 kernel is far from it: the test can tell the recursions apart
    K_one = ntk.analytic_ntk(X, activation="relu", sigma_a=sa, sigma_w=sw, sigma_b=sb, bias=True, lr=lr,
                             layer_lr=(ea, ew, eb), depth=1)
    assert _rel(K_one, K_star) > 0.2


def test_depth_recursion_quadrature_matches_closed_form():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(4, 3))
    kw = dict(sigma_b=0.7, bias=True, depth=3)
    closed = ntk.analytic_ntk(X, activation="erf", **kw)
    quad = ntk.analytic_ntk(X, activation="erf", method="quadrature", **kw)
    np.testing.assert_allclose(quad, closed, rtol=1e-10)
    np.testing.assert_allclose(ntk.analytic_ntk(X, X[:2], activation="erf", **kw), closed[:, :2], rtol=1e-13)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_nngp_is_the_output_covariance_at_initialisation(activation):
    """Under ntk scaling f = m^-1/2 sum_j a_j sigma(z_j) with independent neurons, so Cov f(x), f(x') equals the
    single-neuron E[a^2 sigma(z) sigma(z')] for every m: Monte Carlo over many neurons."""
    rng = np.random.default_rng(12)
    d, S = 2, 400_000
    sa, sw, sb = 1.4, 0.9, 0.8
    X = rng.normal(size=(3, d))
    theta = _init(rng, S, d, True, sigma_a=sa, sigma_w=sw, sigma_b=sb)
    z = X @ theta[:, 1:3].T / math.sqrt(d) + theta[:, 3]
    s = np.vectorize(get_activation(activation).sigma, otypes=[float])(z) * theta[:, 0]
    samples = s[:, None, :] * s[None, :, :]
    mc = samples.mean(-1)
    stderr = samples.std(-1) / math.sqrt(S)
    K = ntk.nngp(X, activation=activation, sigma_a=sa, sigma_w=sw, sigma_b=sb, bias=True)
    assert np.all(np.abs(mc - K) < 5 * stderr)


# ---------------------------------------------------------------------------------------------------------
# kernel observables
# ---------------------------------------------------------------------------------------------------------


def test_kernel_observables():
    rng = np.random.default_rng(7)
    y = rng.normal(size=6)
    assert ntk.kernel_alignment(np.outer(y, y), y) == pytest.approx(1.0, rel=1e-14)
    assert ntk.kernel_alignment(-np.outer(y, y), y) == pytest.approx(-1.0, rel=1e-14)
    A = rng.normal(size=(6, 6))
    K = A @ A.T
    assert ntk.lambda_min(K) == pytest.approx(np.linalg.eigvalsh(K)[0], rel=1e-12)
    assert ntk.kernel_change(2 * K, K) == pytest.approx(1.0, rel=1e-14)
    np.testing.assert_allclose(ntk.kernel_alignment(K, y), y @ K @ y / np.sqrt(np.sum(K**2)) / (y @ y), rtol=1e-14)

    d, m = 3, 50
    X = rng.normal(size=(6, d))
    th0 = _init(rng, m, d, False)
    th1 = th0.copy()
    th1[:, 0] *= 1.1  # Theta = eta_a S S^T + (x.x'/d) * (G G^T) with G linear in a
    obs = ntk.kernel_observables([th0, th0, th1], X, y, activation="relu", layer_lr=(0.0, 1.0, 1.0))
    assert obs.relative_change[0] == 0.0 and obs.relative_change[1] == 0.0
    assert obs.relative_change[2] == pytest.approx(1.1**2 - 1, rel=1e-12)
    K0 = ntk.empirical_ntk(th0, X, layer_lr=(0.0, 1.0, 1.0))
    assert obs.lambda_min[0] == pytest.approx(np.linalg.eigvalsh(K0)[0], rel=1e-10)
    assert obs.alignment[2] == pytest.approx(obs.alignment[0], rel=1e-12)  # scale-invariant


# ---------------------------------------------------------------------------------------------------------
# accuracy contract (issue 16): mpmath references, two input sets sharing points, refused settings
# ---------------------------------------------------------------------------------------------------------

with open(os.path.join(os.path.dirname(__file__), "data", "mpmath_refs.json")) as _f:
    REFS = json.load(_f)  # made by tests/make_mpmath_refs.py


def _ntk_kw(case):
    return dict(activation=case["act"], depth=case["depth"], bias=case["bias"], sigma_w=case["sigma_w"],
                sigma_a=case["sigma_a"], sigma_b=case["sigma_b"])


@pytest.mark.parametrize("case", REFS["ntk"], ids=lambda c: f"{c['act']}-L{c['depth']}-bias{c['bias']}")
def test_analytic_kernels_against_mpmath(case):
    """NNGP and NTK recursions on two input sets that share points (rows 0 and 2 of X1 are rows 0 and 2 of X2;
    row 3 of X2 is row 0 moved by 2^-40) against mpmath: 1e-12 relative everywhere, shared points included."""
    X1, X2 = np.array(REFS["ntk_X1"]), np.array(REFS["ntk_X2"])
    kw = _ntk_kw(case)
    want_k = np.array([[float(v) for v in row] for row in case["ntk"]])
    want_n = np.array([[float(v) for v in row] for row in case["nngp"]])
    got_k = ntk.analytic_ntk(X1, X2, layer_lr=tuple(case["layer_lr"]), **kw)
    got_n = ntk.nngp(X1, X2, **kw)
    for got, want in ((got_k, want_k), (got_n, want_n)):
        assert np.all(np.abs(got - want) <= 1e-12 * np.abs(want) + 1e-14 * np.abs(want).max()), \
            np.max(np.abs(got - want) / np.abs(want))


@pytest.mark.parametrize("activation", ["relu", "erf", "tanh", "softplus"])
@pytest.mark.parametrize("depth", [1, 3])
@pytest.mark.parametrize("bias", [False, True])
def test_two_set_call_reproduces_one_set_call_at_shared_points(rng, activation, depth, bias):
    """Issue 16: analytic_ntk(X1, X2) at x = x' was 3.4e-9 off the one-set call for relu (norms and cross
    products rounded differently, amplified by the arc-cosine's infinite slope at rho = 1)."""
    X = rng.standard_normal((6, 5)) * rng.uniform(0.2, 3.0, (6, 1))
    X2 = np.vstack([X[[4, 1]], rng.standard_normal((3, 5)), X[[1]]])
    kw = dict(activation=activation, depth=depth, bias=bias, sigma_b=0.6, layer_lr=(1.0, 0.7, 1.3))
    for fn in (ntk.analytic_ntk, lambda *a, **k: ntk.nngp(*a, **{q: v for q, v in k.items() if q != "layer_lr"})):
        one = fn(X, **kw)
        two = fn(X, X2, **kw)
        cols = [4, 1, None, None, None, 1]
        for j, c in enumerate(cols):
            if c is not None:
                np.testing.assert_allclose(two[:, j], one[:, c], rtol=1e-14, atol=1e-15 * np.abs(one).max())
        np.testing.assert_array_equal(np.diag(two[[4, 1]][:, [0, 1]]), np.diag(one)[[4, 1]])


@pytest.mark.parametrize("case", [c for c in REFS["pairs"] if c["b1"] == 0 and c["b2"] == 0],
                         ids=lambda c: f"{c['act']}-{c['q1']}-{c['r']}")
def test_gaussian_expectations_against_mpmath(case):
    """E[s(u)s(v)] = K and E[s'(u)s'(v)] = Kr of the centred pair references, default settings."""
    ess, edd = ntk.gaussian_expectations(case["act"], case["q1"], case["q2"], case["r"])
    want = [float(case["values"][0]), float(case["values"][3])]
    scale = max(abs(float(v)) for v in case["values"])
    for g, w in zip((ess, edd), want):
        assert abs(float(g) - w) <= 1e-12 * abs(w) + 1e-14 * scale, (float(g), w)


def test_quad_points_beyond_the_hermite_limit_are_refused_by_the_kernels():
    for n in (371, 400):
        with pytest.raises(ConfigError, match="quad_points"):
            ntk.gaussian_expectations("tanh", 1.0, 1.0, 0.5, quad_points=n)
        with pytest.raises(ConfigError, match="quad_points"):
            ntk.analytic_ntk(np.eye(3), activation="tanh", quad_points=n)
    e = ntk.gaussian_expectations("tanh", 1.0, 1.0, 0.5, quad_points=370)
    assert e[0] > 0 and e[1] > 0
