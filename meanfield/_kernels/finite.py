r"""Fused kernels on a finite data set: outputs, residuals and particle velocities.

No kernel stores an n x m array: memory is O((n + m) p) plus one tile per thread. Two paths compute the same
numbers.

*Small* batches, of at most :data:`SMALL_PAIRS` (point, particle) pairs, are one tile: a serial pass makes every
pre-activation once, as axpys over the particles (the loops over particles are contiguous and vectorise), keeps
sigma(z) and sigma'(z) in two (batch, m) buffers no larger than one thread's tiles on the blocked path, sums
the residuals from them and then the velocities. No parallel region is entered, so nothing is paid to start,
wake or synchronise threads: this is what makes the many short steps of a small problem fast
(docs/performance.md), and its results cannot depend on the thread count.

Larger batches take the *blocked* path: the points are cut into blocks of :data:`PB` and the particles into
tiles of :data:`TJ`; each (tile x block) of pre-activations is made by one BLAS product ``W_tile @ X_block.T``
into a buffer that stays in cache and is consumed at once (activations, residual sums, the gradient weights
``G = r a sigma'(z)``), and the weight velocities of a tile are the BLAS product ``G @ X_block`` summed over
blocks. The pre-activations are made twice per velocity evaluation, once for the residuals and once for the
velocities: the velocities need every residual, and keeping the n x m pre-activations between the two passes
is what this path avoids. Parallel loops run over independent outputs (blocks of points for the residuals,
tiles of particles for the velocities), each written by one thread with a fixed summation order, so results
are bitwise identical at any thread count. BLAS must run on one thread inside the parallel loops (a
multi-threaded BLAS under numba's threads oversubscribes the cores; docs/performance.md):
:func:`meanfield.threads.threads_for` sets that around every call that can take the blocked path.

Every BLAS product has the same shape (the last tile and block are zero-padded), so the product of a given
particle row and data point does not depend on the row's position in its tile. This keeps twin particles
(symmetric initialisation: rows 2k and 2k+1 with equal w and opposite a) with bitwise equal pre-activations,
and their contributions, summed in particle order, cancel exactly: f_0 = 0 (tests/test_model.py). An OpenBLAS
product of unequal shapes was seen to break this (its edge kernels round differently).

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

from .activation import RELU, dsigma, sigma

# Reassociation lets LLVM vectorise the length-d dot products and axpys (2x at d = 64). It changes the
# rounding of a sum, never its dependence on the thread count, and keeps NaN/Inf semantics (no 'nnan').
# No 'contract': fused multiply-adds would break the exact cancellation f_0 = 0 of symmetric initialisations.
FASTMATH = {"reassoc"}


#: Data points per block and particles per tile of the blocked path (timed against 32 x 256, 64 x 128, 128 x 128
#: and 128 x 256 on the reference machine: all within 10-30 %, docs/performance.md).
PB = 64
TJ = 256
#: Batches of at most this many (point, particle) pairs take the small path: one serial pass over the whole batch
#: as a single tile (its two buffers the size of one thread's tiles on the blocked path). Measured at one thread,
#: one evaluation, relu (docs/performance.md): 2.4 us small against 36 us blocked at 15 x 2 x 16, 37 against
#: 71 us at 128 x 4 x 128, 59 against 380 us at 1024 x 2 x 16, 90 against 79 us at 64 x 16 x 256.
SMALL_PAIRS = PB * TJ
#: No call with less work (pairs x parameters, p >= 2) takes the blocked path.
BLOCKED_MIN_WORK = 2 * (SMALL_PAIRS + 1)
_NO_TARGETS = np.zeros(0)


# ---------------------------------------------------------------------------------------------------------------
# the small path: the whole batch is one tile


@njit(cache=True, fastmath=FASTMATH)
def _features_small(at, X, idx, nb, act, bias, S, P):
    """S[k, j] = sigma(z), P[k, j] = sigma'(z) with z the pre-activation of particle ``at[j]`` at the point
    X[idx[k]], for k < nb. S and P are (nb, m) float64; particles run along rows, so every loop over them is a
    contiguous, vectorisable axpy. (Two-dimensional indexing throughout: a row view costs more than the row's
    arithmetic at these sizes.)"""
    m = at.shape[0]
    d = X.shape[1]
    inv_sqrt_d = 1.0 / math.sqrt(d)
    WT = np.empty((d, m))
    b = np.zeros(m)
    for j in range(m):
        for q in range(d):
            WT[q, j] = at[j, 1 + q]
        if bias:
            b[j] = at[j, 1 + d]
    for k in range(nb):
        i = idx[k]
        for j in range(m):
            S[k, j] = 0.0
        for q in range(d):
            xq = X[i, q]
            for j in range(m):
                S[k, j] += WT[q, j] * xq
        if act == RELU:  # unswitched, so that the loop over particles vectorises
            for j in range(m):
                z = S[k, j] * inv_sqrt_d + b[j]
                pos = z > 0.0
                P[k, j] = 1.0 if pos else 0.0
                S[k, j] = z if pos else 0.0 * z
        else:
            for j in range(m):
                z = S[k, j] * inv_sqrt_d + b[j]
                P[k, j] = dsigma(act, z)
                S[k, j] = sigma(act, z)


@njit(cache=True, fastmath=FASTMATH)
def _sum_small(S, at, y, idx, nb, out_scale, r):
    """r[k] = out_scale sum_j a_j S[k, j] - y[idx[k]] (``y`` empty: no targets, the outputs)."""
    m = at.shape[0]
    for k in range(nb):
        acc = 0.0
        for j in range(m):
            acc += at[j, 0] * S[k, j]
        r[k] = out_scale * acc - (y[idx[k]] if y.shape[0] > 0 else 0.0)


@njit(cache=True, fastmath=FASTMATH)
def _weigh_small(theta, at, X, idx, nb, r, S, P, bias, coef, D, lam, out):
    """The velocities from the features S, P of the particles ``at`` and the residuals r[:nb]."""
    d = X.shape[1]
    m = theta.shape[0]
    inv_sqrt_d = 1.0 / math.sqrt(d)
    scale = -coef / nb
    V = np.zeros((d + 2, m))  # rows: sum r sigma, sum r sigma' x_q (q < d), sum r sigma'
    for k in range(nb):
        i = idx[k]
        rk = r[k]
        for j in range(m):
            V[0, j] += rk * S[k, j]
        for j in range(m):
            V[d + 1, j] += rk * P[k, j]
        for q in range(d):
            g = rk * X[i, q]
            for j in range(m):
                V[1 + q, j] += g * P[k, j]
    for j in range(m):
        a = at[j, 0]
        out[j, 0] = scale * D[0] * V[0, j] - lam * theta[j, 0]
        for q in range(1, 1 + d):
            out[j, q] = (scale * inv_sqrt_d) * D[q] * (a * V[q, j]) - lam * theta[j, q]
        if bias:
            out[j, 1 + d] = scale * D[1 + d] * (a * V[1 + d, j]) - lam * theta[j, 1 + d]


@njit(cache=True)
def features_small(at, X, idx, nb, act, bias):
    """(S, P): sigma and sigma' of every pre-activation of the batch, (nb, m) each (``_features_small``)."""
    S = np.empty((nb, at.shape[0]))
    P = np.empty((nb, at.shape[0]))
    _features_small(at, X, idx, nb, act, bias, S, P)
    return S, P


@njit(cache=True)
def field_small(theta, X, y, idx, nb, act, bias, out_scale, coef, D, lam, r, out):
    """Residuals r[:nb] and velocities ``out`` of the network in one serial pass over the batch as one tile,
    every pre-activation made once (batches of at most :data:`SMALL_PAIRS` pairs)."""
    S, P = features_small(theta, X, idx, nb, act, bias)
    _sum_small(S, theta, y, idx, nb, out_scale, r)
    _weigh_small(theta, theta, X, idx, nb, r, S, P, bias, coef, D, lam, out)


# ---------------------------------------------------------------------------------------------------------------
# the blocked path


@njit(cache=True)
def _tiles(theta, X, bias):
    """(W, a, b) padded to whole tiles: W[j] = w_j / sqrt(d) (ntile TJ, d), a and b (ntile TJ,), zeros beyond m;
    in the dtype of the inputs X (the BLAS products take one dtype)."""
    m = theta.shape[0]
    d = X.shape[1]
    rows = ((m + TJ - 1) // TJ) * TJ
    inv_sqrt_d = 1.0 / math.sqrt(d)
    W = np.zeros((rows, d), dtype=X.dtype)
    a = np.zeros(rows, dtype=X.dtype)
    b = np.zeros(rows, dtype=X.dtype)
    for j in range(m):
        a[j] = theta[j, 0]
        for q in range(d):
            W[j, q] = theta[j, 1 + q] * inv_sqrt_d
        if bias:
            b[j] = theta[j, 1 + d]
    return W, a, b


@njit(cache=True)
def _gather_T(X, idx, i0, ib, XbT):
    """XbT[:, ii] = X[idx[i0 + ii]] for ii < ib, zero beyond: a block of points, transposed (d, PB)."""
    d = X.shape[1]
    for q in range(d):
        for ii in range(PB):
            XbT[q, ii] = X[idx[i0 + ii], q] if ii < ib else 0.0


@njit(cache=True)
def _sum_tile(ZT, a, b, j0, jt, act, acc):
    """acc[ii] += sum_{jj < jt} a_j sigma(z_j,ii + b_j), j = j0 + jj, in particle order for every point."""
    pb = ZT.shape[1]
    if act == RELU:  # unswitched, so that the loop over points vectorises
        for jj in range(jt):
            aj = a[j0 + jj]
            bj = b[j0 + jj]
            row = ZT[jj]
            for ii in range(pb):
                z = row[ii] + bj
                acc[ii] += aj * (z if z > 0.0 else 0.0 * z)
    else:
        for jj in range(jt):
            aj = a[j0 + jj]
            bj = b[j0 + jj]
            row = ZT[jj]
            for ii in range(pb):
                acc[ii] += aj * sigma(act, row[ii] + bj)


@njit(cache=True, parallel=True)
def _residuals_blocked(theta, X, y, idx, nb, act, bias, out_scale, r):
    d = X.shape[1]
    m = theta.shape[0]
    W, a, b = _tiles(theta, X, bias)
    ntile = W.shape[0] // TJ
    for blk in prange((nb + PB - 1) // PB):
        i0 = blk * PB
        ib = min(PB, nb - i0)
        XbT = np.empty((d, PB), dtype=X.dtype)
        _gather_T(X, idx, i0, ib, XbT)
        ZT = np.empty((TJ, PB), dtype=X.dtype)
        acc = np.zeros(PB)
        for t in range(ntile):
            j0 = t * TJ
            np.dot(W[j0:j0 + TJ], XbT, ZT)
            _sum_tile(ZT, a, b, j0, min(TJ, m - j0), act, acc)
        for ii in range(ib):
            r[i0 + ii] = out_scale * acc[ii] - y[idx[i0 + ii]]


@njit(cache=True, fastmath=FASTMATH)
def _weigh_tile(ZT, a, b, j0, jt, act, rb, ib, zero, G, acc0, accb):
    """For the tile's particles: acc0 += sum_ii r_ii sigma(z), G[jj, ii] = r_ii a_j sigma'(z), accb += sum_ii G.

    ``zero`` is 0 in the inputs' dtype: sums over the block stay in that dtype (float32 vectorises twice as wide).
    """
    pb = ZT.shape[1]
    for jj in range(jt):
        aj = a[j0 + jj]
        bj = b[j0 + jj]
        row = ZT[jj]
        grow = G[jj]
        s0 = zero
        sb = zero
        if act == RELU:  # unswitched, so that the loop over points vectorises
            for ii in range(pb):
                z = row[ii] + bj
                pos = z > zero
                s0 += rb[ii] * (z if pos else zero * z)
                g = rb[ii] * aj if pos else zero
                grow[ii] = g
                sb += g
        else:
            for ii in range(ib):
                z = row[ii] + bj
                s0 += rb[ii] * sigma(act, z)
                g = rb[ii] * aj * dsigma(act, z)
                grow[ii] = g
                sb += g
            for ii in range(ib, pb):
                grow[ii] = zero
        acc0[jj] += s0
        accb[jj] += sb
    for jj in range(jt, G.shape[0]):
        for ii in range(pb):
            G[jj, ii] = zero


@njit(cache=True, parallel=True)
def _velocities_blocked(theta, at, X, idx, nb, r, act, bias, coef, D, lam, out):
    d = X.shape[1]
    m = theta.shape[0]
    inv_sqrt_d = 1.0 / math.sqrt(d)
    scale = -coef / nb
    W, a, b = _tiles(at, X, bias)
    nblk = (nb + PB - 1) // PB
    Xg = np.zeros((nblk * PB, d), dtype=X.dtype)  # the batch, gathered and zero-padded to whole blocks
    rg = np.zeros(nblk * PB, dtype=X.dtype)
    zero = rg[0]
    for k in range(nb):
        rg[k] = r[k]
        for q in range(d):
            Xg[k, q] = X[idx[k], q]
    for t in prange(W.shape[0] // TJ):
        j0 = t * TJ
        jt = min(TJ, m - j0)
        Wt = W[j0:j0 + TJ]
        ZT = np.empty((TJ, PB), dtype=X.dtype)
        G = np.empty((TJ, PB), dtype=X.dtype)
        GX = np.empty((TJ, d), dtype=X.dtype)
        accw = np.zeros((TJ, d))
        acc0 = np.zeros(TJ)
        accb = np.zeros(TJ)
        for blk in range(nblk):
            i0 = blk * PB
            Xb = Xg[i0:i0 + PB]
            np.dot(Wt, Xb.T, ZT)
            _weigh_tile(ZT, a, b, j0, jt, act, rg[i0:i0 + PB], min(PB, nb - i0), zero, G, acc0, accb)
            np.dot(G, Xb, GX)
            accw += GX
        for jj in range(jt):
            j = j0 + jj
            out[j, 0] = scale * D[0] * acc0[jj] - lam * theta[j, 0]
            for q in range(1, 1 + d):
                out[j, q] = (scale * inv_sqrt_d) * D[q] * accw[jj, q - 1] - lam * theta[j, q]
            if bias:
                out[j, 1 + d] = scale * D[1 + d] * accb[jj] - lam * theta[j, 1 + d]


# ---------------------------------------------------------------------------------------------------------------
# the entry points


@njit(cache=True)
def outputs(theta, X, act, bias, out_scale, out):
    """out[i] = f(X[i]) for every row of X."""
    n = X.shape[0]
    idx = np.arange(n)
    if n * theta.shape[0] <= SMALL_PAIRS:
        S, P = features_small(theta, X, idx, n, act, bias)
        _sum_small(S, theta, _NO_TARGETS, idx, n, out_scale, out)
    else:
        _residuals_blocked(theta, X, np.zeros(n, dtype=X.dtype), idx, n, act, bias, out_scale, out)


@njit(cache=True)
def residuals(theta, X, y, idx, nb, act, bias, out_scale, r):
    """r[k] = f(X[idx[k]]) - y[idx[k]] for k < nb."""
    if nb * theta.shape[0] <= SMALL_PAIRS:
        S, P = features_small(theta, X, idx, nb, act, bias)
        _sum_small(S, theta, y, idx, nb, out_scale, r)
    else:
        _residuals_blocked(theta, X, y, idx, nb, act, bias, out_scale, r)


@njit(cache=True)
def velocities(theta, at, X, idx, nb, r, act, bias, coef, D, lam, out):
    """out[j] = velocity of particle j given the residuals r[:nb] on the points X[idx[:nb]].

    The features grad phi are evaluated at the particles ``at``: ``at = theta`` for the network itself,
    ``at = theta0`` for the network linearised at theta0 (``linearized.py``); weight decay acts on ``theta``.
    """
    if nb * theta.shape[0] <= SMALL_PAIRS:
        S, P = features_small(at, X, idx, nb, act, bias)
        _weigh_small(theta, at, X, idx, nb, r, S, P, bias, coef, D, lam, out)
    else:
        _velocities_blocked(theta, at, X, idx, nb, r, act, bias, coef, D, lam, out)
