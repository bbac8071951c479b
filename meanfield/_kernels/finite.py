r"""Fused kernels on a finite data set: outputs, residuals and particle velocities.

Each kernel streams over the (data point, particle) pairs and never stores an n x m array: memory is
O((n + m) p). Parallel loops run over independent outputs (data points for outputs, particles for
velocities), each written by one thread with a fixed summation order, so results are bitwise identical at
any thread count.

Maths (docs/conventions.md): :math:`z_{ij} = w_j\cdot x_i/\sqrt d + b_j`,
:math:`f(x_i) = s_{\rm out} \sum_j a_j \sigma(z_{ij})` with :math:`s_{\rm out} = c\,m^{-\alpha}`, and the
velocity of particle j on a batch :math:`B` of residuals :math:`r_i = f(x_i) - y_i` is

.. math:: v_j = -\frac{k}{|B|}\, D \sum_{i\in B} r_i \nabla_\theta\varphi(\theta_j; x_i) - \lambda\theta_j,
   \qquad \nabla_\theta\varphi = (\sigma(z), a\sigma'(z) x/\sqrt d, a\sigma'(z)),

with :math:`k = \eta\, m^{\beta-\alpha}/c`.
"""

import math

import numpy as np
from numba import njit, prange

from .activation import dsigma, sigma

# Reassociation lets LLVM vectorise the length-d dot products and axpys (2x at d = 64). It changes the
# rounding of a sum, never its dependence on the thread count, and keeps NaN/Inf semantics (no 'nnan').
# No 'contract': fused multiply-adds would break the exact cancellation f_0 = 0 of symmetric initialisations.
FASTMATH = {"reassoc"}


@njit(cache=True, inline="always", fastmath=FASTMATH)
def _preactivation(theta, j, X, i, d, bias, inv_sqrt_d):
    z = 0.0
    for q in range(d):
        z += theta[j, 1 + q] * X[i, q]
    z *= inv_sqrt_d
    if bias:
        z += theta[j, 1 + d]
    return z


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def outputs(theta, X, act, bias, out_scale, out):
    """out[i] = f(X[i]) for every row of X."""
    n, d = X.shape
    m = theta.shape[0]
    inv_sqrt_d = 1.0 / math.sqrt(d)
    for i in prange(n):
        acc = 0.0
        for j in range(m):
            acc += theta[j, 0] * sigma(act, _preactivation(theta, j, X, i, d, bias, inv_sqrt_d))
        out[i] = out_scale * acc


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def residuals(theta, X, y, idx, nb, act, bias, out_scale, r):
    """r[k] = f(X[idx[k]]) - y[idx[k]] for k < nb."""
    d = X.shape[1]
    m = theta.shape[0]
    inv_sqrt_d = 1.0 / math.sqrt(d)
    for k in prange(nb):
        i = idx[k]
        acc = 0.0
        for j in range(m):
            acc += theta[j, 0] * sigma(act, _preactivation(theta, j, X, i, d, bias, inv_sqrt_d))
        r[k] = out_scale * acc - y[i]


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def velocities(theta, at, X, idx, nb, r, act, bias, coef, D, lam, out):
    """out[j] = velocity of particle j given the residuals r[:nb] on the points X[idx[:nb]].

    The features grad phi are evaluated at the particles ``at``: ``at = theta`` for the network itself,
    ``at = theta0`` for the network linearised at theta0 (``linearized.py``); weight decay acts on ``theta``.
    """
    d = X.shape[1]
    m, p = theta.shape
    inv_sqrt_d = 1.0 / math.sqrt(d)
    scale = -coef / nb
    for j in prange(m):
        acc = np.zeros(p)  # a private accumulator lets the axpy below vectorise
        a = at[j, 0]
        for k in range(nb):
            i = idx[k]
            z = _preactivation(at, j, X, i, d, bias, inv_sqrt_d)
            rk = r[k]
            acc[0] += rk * sigma(act, z)
            g = rk * a * dsigma(act, z)
            for q in range(d):
                acc[1 + q] += g * X[i, q]
            if bias:
                acc[1 + d] += g
        out[j, 0] = scale * D[0] * acc[0] - lam * theta[j, 0]
        for q in range(1, 1 + d):
            out[j, q] = (scale * inv_sqrt_d) * D[q] * acc[q] - lam * theta[j, q]
        if bias:
            out[j, 1 + d] = scale * D[1 + d] * acc[1 + d] - lam * theta[j, 1 + d]
