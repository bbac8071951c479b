r"""Slow, obviously correct NumPy references for the particle engine.

Everything here is written from docs/conventions.md with explicit (n, m) arrays and no numba, so the
compiled kernels can be checked against it:

.. math:: z_{ij} = w_j\cdot x_i/\sqrt d + b_j, \qquad
   f(x_i) = c\,m^{-\alpha}\sum_j a_j\sigma(z_{ij}), \qquad R = \frac1{2n}\sum_i (f(x_i) - y_i)^2,

.. math:: v_j = -\eta\,\frac{m^\beta}{c^2}\,D\,\nabla_{\theta_j}R - \lambda\theta_j .

The activations are NumPy/SciPy functions, independent of ``meanfield._kernels.activation``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf, expit

#: sigma(z) and sigma'(z) of the built-in activations, from NumPy/SciPy.
SIGMA = {
    "identity": (lambda z: z, lambda z: np.ones_like(z)),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float)),
    "erf": (erf, lambda z: 2.0 / np.sqrt(np.pi) * np.exp(-z * z)),
    "tanh": (np.tanh, lambda z: 1.0 / np.cosh(z) ** 2),
    "sigmoid": (expit, lambda z: expit(z) * expit(-z)),
    "softplus": (lambda z: np.logaddexp(0.0, z), expit),
    "quadratic": (lambda z: z * z, lambda z: 2.0 * z),
}


def split(theta, d, bias):
    """(a, W, b) of a particle array (m, p); b is zeros without bias."""
    theta = np.asarray(theta, dtype=np.float64)
    a = theta[:, 0]
    W = theta[:, 1 : 1 + d]
    b = theta[:, 1 + d] if bias else np.zeros(theta.shape[0])
    return a, W, b


def preactivations(theta, X, bias):
    """z[i, j] = w_j . x_i / sqrt(d) + b_j, shape (n, m)."""
    X = np.asarray(X, dtype=np.float64)
    d = X.shape[1]
    _, W, b = split(theta, d, bias)
    return X @ W.T / np.sqrt(d) + b[None, :]


def outputs(theta, X, sigma, bias=False, alpha=1.0, c=1.0):
    """f(x_i) = c m^-alpha sum_j a_j sigma(z_ij), shape (n,). ``sigma`` is a name of SIGMA or a callable."""
    s = SIGMA[sigma][0] if isinstance(sigma, str) else sigma
    a = np.asarray(theta, dtype=np.float64)[:, 0]
    m = a.shape[0]
    Z = preactivations(theta, X, bias)
    return c * m ** (-alpha) * (s(Z) * a[None, :]).sum(axis=1)


def risk(theta, X, y, sigma, bias=False, alpha=1.0, c=1.0):
    """R = 1/(2n) sum_i (f(x_i) - y_i)^2."""
    r = outputs(theta, X, sigma, bias, alpha, c) - np.asarray(y, dtype=np.float64)
    return 0.5 * np.mean(r * r)


def grad_risk(theta, X, y, sigma, bias=False, alpha=1.0, c=1.0):
    r"""grad_{theta_j} R = (c m^-alpha / n) sum_i r_i (sigma(z_ij), a_j sigma'(z_ij) x_i/sqrt d, a_j sigma'(z_ij)).

    ``sigma`` is a name of SIGMA or a pair of callables (sigma, dsigma). Returns shape (m, p).
    """
    s, ds = SIGMA[sigma] if isinstance(sigma, str) else sigma
    theta = np.asarray(theta, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    m = theta.shape[0]
    a = theta[:, 0]
    Z = preactivations(theta, X, bias)  # (n, m)
    r = outputs(theta, X, s, bias, alpha, c) - np.asarray(y, dtype=np.float64)  # (n,)
    k = c * m ** (-alpha) / n
    S, dS = s(Z), ds(Z)  # (n, m)
    g = np.empty_like(theta)
    g[:, 0] = k * (r[:, None] * S).sum(axis=0)
    G = r[:, None] * dS * a[None, :]  # (n, m): r_i a_j sigma'(z_ij)
    g[:, 1 : 1 + d] = k * (G.T @ X) / np.sqrt(d)
    if bias:
        g[:, 1 + d] = k * G.sum(axis=0)
    return g


def multipliers(p, d, layer_lr=(1.0, 1.0, 1.0)):
    """The diagonal of D, shape (p,): eta_a for a, eta_w for each w_k, eta_b for b (when p = d + 2)."""
    D = np.full(p, float(layer_lr[1]))
    D[0] = layer_lr[0]
    if p == d + 2:
        D[-1] = layer_lr[2]
    return D


def velocities(theta, X, y, sigma, bias=False, alpha=1.0, beta=1.0, c=1.0, lr=1.0, layer_lr=(1.0, 1.0, 1.0),
               weight_decay=0.0, grad=None):
    """v_j = -lr m^beta / c^2 D grad_{theta_j} R - lambda theta_j, shape (m, p).

    ``grad`` may be given (e.g. a finite-difference gradient); otherwise :func:`grad_risk` is used.
    """
    theta = np.asarray(theta, dtype=np.float64)
    m, p = theta.shape
    d = np.asarray(X).shape[1]
    if grad is None:
        grad = grad_risk(theta, X, y, sigma, bias, alpha, c)
    D = multipliers(p, d, layer_lr)
    return -lr * m**beta / c**2 * D[None, :] * grad - weight_decay * theta


def central_difference(f, x, eps):
    """Gradient of a scalar function by central differences, (f(x + eps e_k) - f(x - eps e_k)) / (2 eps)."""
    x = np.array(x, dtype=np.float64)
    g = np.empty_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for k in range(flat.size):
        old = flat[k]
        flat[k] = old + eps
        fp = f(x)
        flat[k] = old - eps
        fm = f(x)
        flat[k] = old
        gflat[k] = (fp - fm) / (2.0 * eps)
    return g


def rel_err(a, b):
    """max |a - b| / max |b|: a norm-wise relative error (0 when a == b, inf when only b is all zero)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    num, den = float(np.max(np.abs(a - b))), float(np.max(np.abs(b)))
    if num == 0.0:
        return 0.0
    return num / den if den > 0.0 else float("inf")
