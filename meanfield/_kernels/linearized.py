r"""Kernels of the network linearised at :math:`\theta^0` (parameter space).

.. math:: f^{\rm lin}(x;\theta) = f(x;\theta^0) + c\,m^{-\alpha}\sum_j \nabla_\theta\varphi(\theta^0_j; x)
   \cdot(\theta_j - \theta^0_j),\qquad
   \nabla_\theta\varphi(\theta^0; x)\cdot\delta = \delta_a\sigma(z^0) + a^0\sigma'(z^0)(\delta_w\cdot x/\sqrt d + \delta_b)

Its risk gradient has the same form as the network's with every :math:`\nabla\varphi` frozen at
:math:`\theta^0`, so the velocity of particle j,
:math:`-\frac{k}{|B|} D\sum_{i\in B} r^{\rm lin}_i \nabla_\theta\varphi(\theta^0_j; x_i) - \lambda\theta_j`, is
``finite.velocities`` with the features taken at ``theta0``. Same two paths and determinism as ``finite.py``:
a small batch (at most ``finite.SMALL_PAIRS`` pairs) is one serial tile whose features at theta0 serve both the
outputs and the velocities; above it the outputs are summed over tiles of particles whose pre-activations at
theta0 and increments :math:`\delta_w\cdot x/\sqrt d` are made by two BLAS products per (tile x block).
"""

import math

import numpy as np
from numba import njit, prange

from .activation import RELU, dsigma, sigma
from .finite import FASTMATH, PB, SMALL_PAIRS, TJ, _gather_T, _tiles, _weigh_small, features_small


@njit(cache=True, fastmath=FASTMATH)
def _lin_sum_small(S, P, theta, theta0, X, f0, idx, nb, bias, out_scale, out):
    """out[k] = f_lin(X[idx[k]]) from the features S = sigma(z0), P = sigma'(z0) at theta0 (``features_small``);
    the increments (w - w0) . x / sqrt(d) are made as axpys over the particles, like the pre-activations."""
    m = theta.shape[0]
    d = X.shape[1]
    inv_sqrt_d = 1.0 / math.sqrt(d)
    dWT = np.empty((d, m))
    da = np.empty(m)
    a0 = np.empty(m)
    db = np.zeros(m)
    for j in range(m):
        da[j] = theta[j, 0] - theta0[j, 0]
        a0[j] = theta0[j, 0]
        for q in range(d):
            dWT[q, j] = theta[j, 1 + q] - theta0[j, 1 + q]
        if bias:
            db[j] = theta[j, 1 + d] - theta0[j, 1 + d]
    dz = np.empty(m)
    for k in range(nb):
        i = idx[k]
        for j in range(m):
            dz[j] = 0.0
        for q in range(d):
            xq = X[i, q]
            wq = dWT[q]
            for j in range(m):
                dz[j] += wq[j] * xq
        row = S[k]
        prow = P[k]
        acc = 0.0
        for j in range(m):
            acc += da[j] * row[j] + a0[j] * prow[j] * (dz[j] * inv_sqrt_d + db[j])
        out[k] = f0[i] + out_scale * acc


@njit(cache=True)
def lin_field_small(theta, theta0, X, y, f0, idx, nb, act, bias, out_scale, coef, D, lam, r, out):
    """Residuals r[:nb] and velocities ``out`` of the linearised network in one serial pass over the batch as
    one tile (``finite.field_small``): the features at theta0 serve both."""
    S, P = features_small(theta0, X, idx, nb, act, bias)
    _lin_sum_small(S, P, theta, theta0, X, f0, idx, nb, bias, out_scale, r)
    for k in range(nb):
        r[k] -= y[idx[k]]
    _weigh_small(theta, theta0, X, idx, nb, r, S, P, bias, coef, D, lam, out)


@njit(cache=True)
def _delta_tiles(theta, theta0, X, bias):
    """(dW, da, db) = (w - w0) / sqrt(d), a - a0, b - b0, padded to whole tiles like ``finite._tiles``."""
    m = theta.shape[0]
    d = X.shape[1]
    rows = ((m + TJ - 1) // TJ) * TJ
    inv_sqrt_d = 1.0 / math.sqrt(d)
    dW = np.zeros((rows, d), dtype=X.dtype)
    da = np.zeros(rows, dtype=X.dtype)
    db = np.zeros(rows, dtype=X.dtype)
    for j in range(m):
        da[j] = theta[j, 0] - theta0[j, 0]
        for q in range(d):
            dW[j, q] = (theta[j, 1 + q] - theta0[j, 1 + q]) * inv_sqrt_d
        if bias:
            db[j] = theta[j, 1 + d] - theta0[j, 1 + d]
    return dW, da, db


@njit(cache=True)
def _lin_sum_tile(ZT, DT, a0, b0, da, db, j0, jt, act, acc):
    """acc[ii] += sum_jj da_j sigma(z0) + a0_j sigma'(z0) (dz + db_j), in particle order for every point."""
    pb = ZT.shape[1]
    if act == RELU:  # unswitched, so that the loop over points vectorises
        for jj in range(jt):
            j = j0 + jj
            for ii in range(pb):
                z = ZT[jj, ii] + b0[j]
                pos = z > 0.0
                acc[ii] += da[j] * (z if pos else 0.0 * z) + a0[j] * (1.0 if pos else 0.0) * (DT[jj, ii] + db[j])
    else:
        for jj in range(jt):
            j = j0 + jj
            for ii in range(pb):
                z = ZT[jj, ii] + b0[j]
                acc[ii] += da[j] * sigma(act, z) + a0[j] * dsigma(act, z) * (DT[jj, ii] + db[j])


@njit(cache=True, parallel=True)
def _lin_outputs_blocked(theta, theta0, X, f0, idx, nb, act, bias, out_scale, out):
    d = X.shape[1]
    m = theta.shape[0]
    W0, a0, b0 = _tiles(theta0, X, bias)
    dW, da, db = _delta_tiles(theta, theta0, X, bias)
    for blk in prange((nb + PB - 1) // PB):
        i0 = blk * PB
        ib = min(PB, nb - i0)
        XbT = np.empty((d, PB), dtype=X.dtype)
        _gather_T(X, idx, i0, ib, XbT)
        ZT = np.empty((TJ, PB), dtype=X.dtype)
        DT = np.empty((TJ, PB), dtype=X.dtype)
        acc = np.zeros(PB)
        for t in range(W0.shape[0] // TJ):
            j0 = t * TJ
            np.dot(W0[j0:j0 + TJ], XbT, ZT)
            np.dot(dW[j0:j0 + TJ], XbT, DT)
            _lin_sum_tile(ZT, DT, a0, b0, da, db, j0, min(TJ, m - j0), act, acc)
        for ii in range(ib):
            out[i0 + ii] = f0[idx[i0 + ii]] + out_scale * acc[ii]


@njit(cache=True)
def lin_outputs(theta, theta0, X, f0, idx, nb, act, bias, out_scale, out):
    """out[k] = f_lin(X[idx[k]]) for k < nb, given f0[idx[k]] = f(X[idx[k]]; theta0)."""
    if nb * theta.shape[0] <= SMALL_PAIRS:
        S, P = features_small(theta0, X, idx, nb, act, bias)
        _lin_sum_small(S, P, theta, theta0, X, f0, idx, nb, bias, out_scale, out)
    else:
        _lin_outputs_blocked(theta, theta0, X, f0, idx, nb, act, bias, out_scale, out)


@njit(cache=True)
def lin_residuals(theta, theta0, X, y, f0, idx, nb, act, bias, out_scale, r):
    lin_outputs(theta, theta0, X, f0, idx, nb, act, bias, out_scale, r)
    for k in range(nb):
        r[k] -= y[idx[k]]
