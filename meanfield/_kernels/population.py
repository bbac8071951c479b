r"""Population-risk kernels: Gaussian pair expectations and the pairwise particle velocities.

For :math:`x \sim N(0, I_d)` and two neurons :math:`\theta_i, \theta_j`, the pre-activations
:math:`u = w_i\cdot x/\sqrt d + b_i`, :math:`v = w_j\cdot x/\sqrt d + b_j` are jointly Gaussian with means
:math:`(b_i, b_j)`, variances :math:`q_1 = |w_i|^2/d`, :math:`q_2 = |w_j|^2/d` and covariance
:math:`r = w_i\cdot w_j/d`. :func:`pop_pair` returns, for :math:`K = E[\sigma(u)\sigma(v)]`,

* ``K``
* ``K1`` :math:`= 2\partial K/\partial q_1 = E[\sigma''(u)\sigma(v)]`, ``K2`` :math:`= 2\partial K/\partial q_2`
* ``Kr`` :math:`= \partial K/\partial r = E[\sigma'(u)\sigma'(v)]`
* ``Kb1`` :math:`= \partial K/\partial b_i = E[\sigma'(u)\sigma(v)]`, ``Kb2`` :math:`= E[\sigma(u)\sigma'(v)]`

so that :math:`\nabla_{w_i}K = (K_1 w_i + K_r w_j)/d` and :math:`\nabla_{w_j}K = (K_2 w_j + K_r w_i)/d`.

Methods: CLOSED (relu and erf without biases, identity and quadratic always) or QUAD: two-dimensional
Gauss-Hermite quadrature with probabilists' nodes, except for relu, whose kink defeats Gauss-Hermite
(algebraic convergence): relu uses a one-dimensional Gauss-Legendre quadrature over the half-line
:math:`u > 0` with the inner conditional expectation over :math:`v` in closed form, split at the kink of
the inner integrand, and closed-form ``K1``/``K2`` (:math:`\sigma'' = \delta`).

:func:`population_velocities` evaluates every pair (i, j) of particles once, for both rows: particles are cut into
blocks of ``BLOCK`` rows, the upper triangle of block pairs is covered by a round-robin tournament
(every round pairs each block with exactly one other block), and in each round the disjoint block pairs run
in parallel. Each row's accumulator therefore receives its contributions in an order fixed by the
schedule, independent of the number of threads, and memory stays O(m p).
"""

import math

import numpy as np
from numba import njit, prange

from . import random as rnd
from .activation import ERF, IDENTITY, QUADRATIC, RELU, SIGMOID, SOFTPLUS, TANH, dsigma, sigma, sigma3

#: Method codes: closed form; QUAD the integrand-adapted rule (relu: Gauss-Legendre over u > 0; smooth
#: built-ins: graded composite Gauss-Legendre); GH the fixed tensor Gauss-Hermite rule of ``nodes``
#: (custom activations, or an explicit ``quad_points``).
CLOSED, QUAD, GH = 0, 1, 2
BLOCK = 64
#: Number of super-blocks of the round-robin schedule (a constant: results never depend on threads).
SUPER = 16
_TWO_PI = 2.0 * math.pi
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
FASTMATH = {"reassoc", "contract"}

# 24-point Gauss-Legendre rule on [-1, 1] (numpy.polynomial.legendre.leggauss(24)).
_GL_X, _GL_W = np.polynomial.legendre.leggauss(24)
#: Half-width of the truncated domain (in standard deviations) of the relu quadrature.
_RELU_L = 12.0

# Graded composite Gauss-Legendre rule for the smooth built-in activations (tanh, sigmoid, softplus, erf).
# Over a standard normal variable xi, sigma(b + s xi) changes on the scale delta/s around xi = -b/s, where
# delta is the distance of sigma's nearest complex singularity from the real axis (tanh: pi/2; sigmoid,
# softplus: pi; erf is entire, 1.0 accounts for its growth off the axis). The panels are a central one of
# half-width FRAC delta/s around that point and panels growing by the ratio GRADE away from it (each then
# seen from a singularity at least 2.3 of its half-widths away: Bernstein ellipse parameter >= 4.4, so 14
# Gauss-Legendre nodes per panel leave ~1e-18; 12 left 8e-12 in an erf case whose inner expectation is a
# narrow Gaussian bump), cut to at most HMAX, on [-L, L] (phi(9) = 1e-18).
# Verified against mpmath (tests/data/mpmath_refs.json) up to |w|^2/d = 25 with biases; see
# tests/test_population.py::test_pair_expectations_against_mpmath.
_SM_NG = 14
_SMG_X, _SMG_W = np.polynomial.legendre.leggauss(_SM_NG)
_SM_L = 9.0
_SM_HMAX = 3.0
_SM_FRAC = 0.5
_SM_GRADE = 2.5
_SM_MAXBRK = 160
#: Below this 1 - rho^2 (about 0.6 degrees) the determinant q1 q2 - r^2 is recomputed from the weight
#: vectors (unit-vector differences and sums: no cancellation), so that the relu kernels, whose slope in
#: rho is infinite at rho = +-1, stay accurate for near-parallel and antiparallel neurons.
DET_RECOMPUTE = 1e-4


@njit(cache=True, inline="always")
def _phi(x):
    return _INV_SQRT_2PI * math.exp(-0.5 * x * x)


@njit(cache=True, inline="always")
def _Phi(x):
    return 0.5 * math.erfc(-x * _INV_SQRT2)


@njit(cache=True, inline="always")
def _relu_mean(M, S):
    """E[relu(v)] and P(v > 0) for v ~ N(M, S^2)."""
    if S > 0.0:
        z = M / S
        P = _Phi(z)
        return M * P + S * _phi(z), P
    if M > 0.0:
        return M, 1.0
    return 0.0, 0.0


@njit(cache=True, fastmath=FASTMATH)
def _relu_closed(q1, q2, r, det):
    s = math.sqrt(q1 * q2)
    if s <= 0.0:
        return 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    sin_s = math.sqrt(max(det, 0.0))  # s * sin(angle), det = q1 q2 - r^2
    pa = angle(sin_s, -r)  # pi - arccos(r / s), accurate near rho = +-1 (no pi - (pi - small) cancellation)
    K = (sin_s + pa * r) / _TWO_PI
    K1 = sin_s / (q1 * _TWO_PI)  # sqrt(q2/q1) sin(angle) / (2 pi)
    K2 = sin_s / (q2 * _TWO_PI)
    Kr = pa / _TWO_PI
    # E[1{u>0} relu(v)] for centred u, v: sqrt(q2) (1 + rho) / (2 sqrt(2 pi))
    hb = 0.5 * _INV_SQRT_2PI * (1.0 + r / s)
    return K, K1, K2, Kr, math.sqrt(q2) * hb, math.sqrt(q1) * hb


@njit(cache=True)
def _erf_closed(q1, q2, r, det):
    D1 = 1.0 + 2.0 * q1
    D2 = 1.0 + 2.0 * q2
    den = math.sqrt(1.0 + 2.0 * (q1 + q2) + 4.0 * max(det, 0.0))  # D1 D2 - 4 r^2 without cancellation
    z = 2.0 * r / math.sqrt(D1 * D2)
    if z > 1.0:
        z = 1.0
    elif z < -1.0:
        z = -1.0
    K = (2.0 / math.pi) * math.asin(z)
    Kr = (4.0 / math.pi) / den
    K1 = -2.0 * r * Kr / D1
    K2 = -2.0 * r * Kr / D2
    return K, K1, K2, Kr, 0.0, 0.0


@njit(cache=True, inline="always")
def _gaussian_pair(q1, q2, r, det):
    """Standard deviations, correlation rho and sqrt(1 - rho^2) of (u, v) with variances q1, q2, covariance r
    and determinant det = q1 q2 - r^2."""
    s1 = math.sqrt(q1) if q1 > 0.0 else 0.0
    s2 = math.sqrt(q2) if q2 > 0.0 else 0.0
    rho = 0.0
    if s1 > 0.0 and s2 > 0.0:
        rho = r / (s1 * s2)
        rho = min(1.0, max(-1.0, rho))
    # sqrt(1 - rho^2) from the determinant: exactly 0 for a particle with itself (r = q1 = q2)
    rp = min(1.0, math.sqrt(max(0.0, det)) / (s1 * s2)) if s1 > 0.0 and s2 > 0.0 else 1.0
    return s1, s2, rho, rp


@njit(cache=True)
def _quad_gh(act, q1, q2, r, det, b1, b2, nodes, weights):
    """Two-dimensional Gauss-Hermite: u = b1 + s1 xi1, v = b2 + s2 (rho xi1 + rho' xi2)."""
    s1, s2, rho, rp = _gaussian_pair(q1, q2, r, det)
    n = nodes.shape[0]
    K = 0.0
    Kr = 0.0
    Kb1 = 0.0
    Kb2 = 0.0
    E1 = 0.0
    E2 = 0.0
    for k1 in range(n):
        x1 = nodes[k1]
        u = b1 + s1 * x1
        su = sigma(act, u)
        dsu = dsigma(act, u)
        iK = 0.0
        iKr = 0.0
        iKb1 = 0.0
        iKb2 = 0.0
        iE2 = 0.0
        for k2 in range(n):
            eta = rho * x1 + rp * nodes[k2]
            v = b2 + s2 * eta
            wk = weights[k2]
            sv = wk * sigma(act, v)
            dsv = wk * dsigma(act, v)
            iK += sv
            iKr += dsv
            iE2 += dsv * eta
            iKb2 += dsv
        w1 = weights[k1]
        K += w1 * su * iK
        Kb1 += w1 * dsu * iK
        E1 += w1 * dsu * iK * x1
        Kr += w1 * dsu * iKr
        Kb2 += w1 * su * iKb2
        E2 += w1 * su * iE2
    K1 = (E1 - rho * s2 * Kr) / s1 if s1 > 0.0 else 0.0
    K2 = (E2 - rho * s1 * Kr) / s2 if s2 > 0.0 else 0.0
    return K, K1, K2, Kr, Kb1, Kb2


@njit(cache=True)
def _gl_segment(lo, hi, b1, s1, b2, s2, rho, rp, acc):
    """Add the Gauss-Legendre integrals over [lo, hi] of the four relu integrands to acc[0:4]."""
    half = 0.5 * (hi - lo)
    mid = 0.5 * (hi + lo)
    for k in range(_GL_X.shape[0]):
        xi = mid + half * _GL_X[k]
        w = half * _GL_W[k] * _phi(xi)
        u = b1 + s1 * xi
        g0, g1 = _relu_mean(b2 + s2 * rho * xi, s2 * rp)
        acc[0] += w * u * g0  # K
        acc[1] += w * g0  # Kb1
        acc[2] += w * u * g1  # Kb2
        acc[3] += w * g1  # Kr


@njit(cache=True)
def _quad_relu(q1, q2, r, det, b1, b2):
    s1, s2, rho, rp = _gaussian_pair(q1, q2, r, det)
    acc = np.zeros(4)
    if s1 == 0.0:
        # u = b1 is constant: E[relu(b1) relu(v)], E[1{b1>0} relu(v)], ...
        g0, g1 = _relu_mean(b2, s2)
        pos = 1.0 if b1 > 0.0 else 0.0
        acc[0] = max(b1, 0.0) * g0
        acc[1] = pos * g0
        acc[2] = max(b1, 0.0) * g1
        acc[3] = pos * g1
    else:
        lo = max(-b1 / s1, -_RELU_L)
        hi = _RELU_L
        if lo < hi:
            # breakpoints: the kink of the inner integrand (mean of v zero) with a graded mesh around it
            brk = np.empty(64)
            nbk = 0
            brk[nbk] = lo
            nbk += 1
            slope = s2 * rho
            if slope != 0.0:
                xs = -b2 / slope
                width = s2 * rp / abs(slope)  # width of the inner boundary layer in xi
                if lo < xs < hi:
                    brk[nbk] = xs
                    nbk += 1
                h = max(width, 1e-8)
                while h < 2.0 and nbk < 60:
                    for sgn in (-1.0, 1.0):
                        x = xs + sgn * h
                        if lo < x < hi:
                            brk[nbk] = x
                            nbk += 1
                    h *= 4.0
            brk[nbk] = hi
            nbk += 1
            pts = np.sort(brk[:nbk])
            for k in range(nbk - 1):
                a0 = pts[k]
                a1 = pts[k + 1]
                if a1 <= a0:
                    continue
                nsub = int(math.ceil((a1 - a0) / 2.0))
                step = (a1 - a0) / nsub
                for s in range(nsub):
                    _gl_segment(a0 + s * step, a0 + (s + 1) * step if s < nsub - 1 else a1,
                                b1, s1, b2, s2, rho, rp, acc)
    # sigma'' = delta: K1 = p_u(0) E[relu(v) | u = 0], K2 = p_v(0) E[relu(u) | v = 0]
    K1 = 0.0
    K2 = 0.0
    if s1 > 0.0:
        t1 = -b1 / s1
        g0, _ = _relu_mean(b2 + s2 * rho * t1, s2 * rp)
        K1 = _phi(t1) / s1 * g0
    if s2 > 0.0:
        t2 = -b2 / s2
        g0, _ = _relu_mean(b1 + s1 * rho * t2, s1 * rp)
        K2 = _phi(t2) / s2 * g0
    return acc[0], K1, K2, acc[3], acc[1], acc[2]


@njit(cache=True)
def det_from_rows(X, i, Y, j, d, q1, q2, r):
    """q1 q2 - r^2 for rows X[i, 1:1+d], Y[j, 1:1+d] (q = |w|^2/d, r = w.w'/d), accurate near rho = +-1.

    Naive product difference when 1 - rho^2 > DET_RECOMPUTE; otherwise Kahan's form
    q1 q2 sin^2(angle) with sin(angle) = |a - b| |a + b| / 2 for the unit vectors a, b.
    """
    det = q1 * q2 - r * r
    if det > DET_RECOMPUTE * q1 * q2:
        return det
    if not (q1 > 0.0 and q2 > 0.0):
        return 0.0
    n1 = math.sqrt(q1 * d)
    n2 = math.sqrt(q2 * d)
    dm = 0.0
    dp = 0.0
    for q in range(d):
        x = X[i, 1 + q] / n1
        y = Y[j, 1 + q] / n2
        dm += (x - y) * (x - y)
        dp += (x + y) * (x + y)
    return q1 * q2 * dm * dp * 0.25


@njit(cache=True, inline="always")
def _pole(act):
    """Distance from the real axis of sigma's nearest complex singularity (in units of z)."""
    if act == TANH:
        return 0.5 * math.pi
    if act == SIGMOID or act == SOFTPLUS:
        return math.pi
    return 1.0


@njit(cache=True)
def _graded(brk, n, c, width):
    """Append c and c +- FRAC width GRADE^k inside (-L, L) to brk[n:]; return the new count.

    Nothing is added when the central panel would be at least as long as HMAX: the panels of the plain
    mesh are then already small against the distance to the singularity.
    """
    if _SM_FRAC * width >= 0.5 * _SM_HMAX:
        return n
    if -_SM_L < c < _SM_L and n < _SM_MAXBRK:
        brk[n] = c
        n += 1
    h = max(_SM_FRAC * width, 1e-12)
    while h < 2.0 * _SM_L and n < _SM_MAXBRK - 1:
        for sgn in (-1.0, 1.0):
            x = c + sgn * h
            if -_SM_L < x < _SM_L:
                brk[n] = x
                n += 1
        h *= _SM_GRADE
    return n


@njit(cache=True)
def _mesh(brk, n):
    """Sorted breakpoints brk[:n] plus the ends -L and L."""
    pts = np.empty(n + 2)
    pts[0] = -_SM_L
    pts[1] = _SM_L
    pts[2:] = brk[:n]
    return np.sort(pts)


@njit(cache=True)
def _inner_smooth(act, M, S, brk):
    """(E sigma(M + S xi), E sigma'(M + S xi), E sigma''(M + S xi)) for xi ~ N(0, 1)."""
    if S == 0.0:
        return sigma3(act, M)
    if act == ERF:
        A = 1.0 + 2.0 * S * S
        g = 2.0 / math.sqrt(math.pi * A) * math.exp(-M * M / A)
        return math.erf(M / math.sqrt(A)), g, -2.0 * M / A * g
    n = _graded(brk, 0, -M / S, _pole(act) / S)
    pts = _mesh(brk, n)
    I0 = 0.0
    I1 = 0.0
    I2 = 0.0
    for k in range(pts.shape[0] - 1):
        a0 = pts[k]
        a1 = pts[k + 1]
        if a1 <= a0:
            continue
        nsub = int(math.ceil((a1 - a0) / _SM_HMAX))
        step = (a1 - a0) / nsub
        for sb in range(nsub):
            lo = a0 + sb * step
            half = 0.5 * step
            mid = lo + half
            for g in range(_SM_NG):
                xi = mid + half * _SMG_X[g]
                w = half * _SMG_W[g] * _phi(xi)
                f0, f1, f2 = sigma3(act, M + S * xi)
                I0 += w * f0
                I1 += w * f1
                I2 += w * f2
    return I0, I1, I2


@njit(cache=True)
def _smooth_pair(act, q1, q2, r, det, b1, b2):
    """(K, K1, K2, Kr, Kb1, Kb2) of a smooth built-in activation by the graded Gauss-Legendre rule.

    u = b1 + s1 xi1 and, given xi1, v = M + S xi2 with M = b2 + s2 rho xi1, S = sqrt(q2 - r^2/q1): the
    inner expectations over xi2 (closed form for erf) times sigma(u), sigma'(u), sigma''(u) integrated over
    xi1 on a mesh graded around the transitions of sigma(u) and of the inner expectation.
    K1 = E[sigma''(u) sigma(v)] and K2 directly from sigma'' (no division by s1 or s2).
    """
    brk = np.empty(_SM_MAXBRK)
    s1 = math.sqrt(q1) if q1 > 0.0 else 0.0
    s2 = math.sqrt(q2) if q2 > 0.0 else 0.0
    if s1 == 0.0:
        I0, I1, I2 = _inner_smooth(act, b2, s2, brk)
        f0, f1, f2 = sigma3(act, b1)
        return f0 * I0, f2 * I0, f0 * I2, f1 * I1, f1 * I0, f0 * I1
    rho = 0.0
    S = s2
    if s2 > 0.0:
        rho = min(1.0, max(-1.0, r / (s1 * s2)))
        S = math.sqrt(max(det, 0.0)) / s1  # s2 sqrt(1 - rho^2)
    pole = _pole(act)
    n = _graded(brk, 0, -b1 / s1, pole / s1)
    slope = s2 * rho
    if slope != 0.0:
        n = _graded(brk, n, -b2 / slope, pole / abs(slope))
    pts = _mesh(brk, n)
    K = 0.0
    K1 = 0.0
    K2 = 0.0
    Kr = 0.0
    Kb1 = 0.0
    Kb2 = 0.0
    for k in range(pts.shape[0] - 1):
        a0 = pts[k]
        a1 = pts[k + 1]
        if a1 <= a0:
            continue
        nsub = int(math.ceil((a1 - a0) / _SM_HMAX))
        step = (a1 - a0) / nsub
        for sb in range(nsub):
            lo = a0 + sb * step
            half = 0.5 * step
            mid = lo + half
            for g in range(_SM_NG):
                xi = mid + half * _SMG_X[g]
                w = half * _SMG_W[g] * _phi(xi)
                f0, f1, f2 = sigma3(act, b1 + s1 * xi)
                I0, I1, I2 = _inner_smooth(act, b2 + slope * xi, S, brk)
                wf0 = w * f0
                wf1 = w * f1
                K += wf0 * I0
                K1 += w * f2 * I0
                K2 += wf0 * I2
                Kr += wf1 * I1
                Kb1 += wf1 * I0
                Kb2 += wf0 * I1
    return K, K1, K2, Kr, Kb1, Kb2


@njit(cache=True)
def pop_pair(act, method, q1, q2, r, det, b1, b2, nodes, weights):
    """(K, K1, K2, Kr, Kb1, Kb2) of the pair with variances q1, q2, covariance r, determinant
    det = q1 q2 - r^2 (computed by the caller, see det_from_rows) and means b1, b2."""
    if act == IDENTITY:
        return r + b1 * b2, 0.0, 0.0, 1.0, b2, b1
    if act == QUADRATIC:
        K = q1 * q2 + 2.0 * r * r + b2 * b2 * q1 + b1 * b1 * q2 + 4.0 * b1 * b2 * r + b1 * b1 * b2 * b2
        return (K, 2.0 * (q2 + b2 * b2), 2.0 * (q1 + b1 * b1), 4.0 * (r + b1 * b2),
                2.0 * b1 * (q2 + b2 * b2) + 4.0 * b2 * r, 2.0 * b2 * (q1 + b1 * b1) + 4.0 * b1 * r)
    if method == CLOSED:
        if act == RELU:
            return _relu_closed(q1, q2, r, det)
        if act == ERF:
            return _erf_closed(q1, q2, r, det)
    if act == RELU:
        return _quad_relu(q1, q2, r, det, b1, b2)
    if method == GH or act < 0:
        return _quad_gh(act, q1, q2, r, det, b1, b2, nodes, weights)
    return _smooth_pair(act, q1, q2, r, det, b1, b2)


@njit(cache=True, parallel=True)
def pop_pair_table(act, method, q1, q2, r, det, b1, b2, nodes, weights, out):
    """out[k] = pair(...) for flat arrays of pair parameters; out has shape (n, 6)."""
    for k in prange(q1.shape[0]):
        res = pop_pair(act, method, q1[k], q2[k], r[k], det[k], b1[k], b2[k], nodes, weights)
        for c in range(6):
            out[k, c] = res[c]


# --------------------------------------------------------------------------------------------------------
# pairwise velocities
# --------------------------------------------------------------------------------------------------------


@njit(cache=True, inline="always", fastmath=FASTMATH)
def _dot(X, i, Y, j, d):
    s = 0.0
    for q in range(d):
        s += X[i, 1 + q] * Y[j, 1 + q]
    return s


# atan(x) = x * P(x^2) on |x| <= tan(pi/8): Chebyshev interpolant of degree 11 in x^2 (max relative
# error 5e-16 against mpmath on a 2e5-point grid).
_ATAN_P = (1.0, -0.3333333333333144, 0.19999999999484824, -0.14285714233983238, 0.11111108499410165,
           -0.09090833010651495, 0.07690931065161861, -0.0665058333392045, 0.057593546942939,
           -0.04652624820745567, 0.02855532953484355, -0.007832125045503442)
_TAN_PI_8 = 0.41421356237309503


@njit(cache=True, inline="always", fastmath=FASTMATH, error_model="numpy")
def angle(y, x):
    """atan2(y, x) for y >= 0, in [0, pi], branch-free so that loops over it vectorise.

    Octant reduction to t = min/max in [0, 1], then atan(t) = pi/4 + atan((t - 1)/(t + 1)) for
    t > tan(pi/8), then the polynomial _ATAN_P: relative error below 1e-15 (tests/test_population.py).
    """
    ax = abs(x)
    big = max(y, ax)
    small = min(y, ax)
    t = small / big if big > 0.0 else 0.0
    red = t > _TAN_PI_8
    tp = (t - 1.0) / (t + 1.0) if red else t
    u = tp * tp
    pol = _ATAN_P[11]
    pol = pol * u + _ATAN_P[10]
    pol = pol * u + _ATAN_P[9]
    pol = pol * u + _ATAN_P[8]
    pol = pol * u + _ATAN_P[7]
    pol = pol * u + _ATAN_P[6]
    pol = pol * u + _ATAN_P[5]
    pol = pol * u + _ATAN_P[4]
    pol = pol * u + _ATAN_P[3]
    pol = pol * u + _ATAN_P[2]
    pol = pol * u + _ATAN_P[1]
    pol = pol * u + _ATAN_P[0]
    at = tp * pol + (0.25 * math.pi if red else 0.0)
    at = 0.5 * math.pi - at if y > ax else at
    return math.pi - at if x < 0.0 else at


@njit(cache=True)
def _det_block(wi, WT, jj, d, qi, qj):
    """det_from_rows for row i (wi) against column jj of the transposed block WT."""
    n1 = math.sqrt(qi * d)
    n2 = math.sqrt(qj * d)
    dm = 0.0
    dp = 0.0
    for q in range(d):
        x = wi[q] / n1
        y = WT[q, jj] / n2
        dm += (x - y) * (x - y)
        dp += (x + y) * (x + y)
    return qi * qj * dm * dp * 0.25


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _relu_block(theta, sq, i0, i1, j0, j1, diag, d, acc, WT, accJ, vec):
    """Closed-form relu without bias on block pair rows [i0, i1) x [j0, j1).

    acc[i] = [sum_l a_l K, sum_l a_l K1, sum_l a_l Kr w_l (d entries), sum_l a_l Kb1]. Off the diagonal
    each pair updates both rows; on a diagonal block (diag, i0 = j0) every ordered pair (i, j), the pair
    (i, i) included, updates row i only, so each unordered pair is still counted once for each of its rows.
    The inner loops run from 0 over contiguous scratch arrays (the block's w transposed), so LLVM
    vectorises them.
    """
    inv_d = 1.0 / d
    inv_2pi = 1.0 / _TWO_PI
    nj = j1 - j0
    aJ = vec[0]
    qJ = vec[1]
    iqJ = vec[2]
    rv = vec[3]
    crv = vec[4]
    krv = vec[5]
    stv = vec[6]
    wi = vec[7]
    dtv = vec[8]
    for jj in range(nj):
        j = j0 + jj
        aJ[jj] = theta[j, 0]
        qJ[jj] = sq[j]
        iqJ[jj] = 1.0 / sq[j] if sq[j] > 0.0 else 0.0
        for q in range(d):
            WT[q, jj] = theta[j, 1 + q]
    for q in range(d + 2):
        for jj in range(nj):
            accJ[q, jj] = 0.0
    for i in range(i0, i1):
        ai = theta[i, 0]
        qi = sq[i]
        if not qi > 0.0:
            continue  # w_i = 0: every pair term vanishes (sigma'(0) = 0)
        for q in range(d):
            wi[q] = theta[i, 1 + q]
        for jj in range(nj):
            rv[jj] = 0.0
        for q in range(d):
            wiq = wi[q]
            for jj in range(nj):
                rv[jj] += wiq * WT[q, jj]
        for jj in range(nj):
            rv[jj] *= inv_d
        if diag:
            rv[i - j0] = qi  # the pair (i, i): r = q_i exactly, so the angle is exactly 0
        for jj in range(nj):
            r = rv[jj]
            dtv[jj] = qi * qJ[jj] - r * r
        for jj in range(nj):  # near-parallel and antiparallel pairs (rare): the determinant without cancellation
            if dtv[jj] <= DET_RECOMPUTE * qi * qJ[jj] and qJ[jj] > 0.0:
                dtv[jj] = _det_block(wi, WT, jj, d, qi, qJ[jj])
        A = 0.0
        Q = 0.0
        for jj in range(nj):
            r = rv[jj]
            ok = 1.0 if qJ[jj] > 0.0 else 0.0
            sin_s = math.sqrt(max(dtv[jj], 0.0))
            pa = angle(sin_s, -r)  # pi - angle, accurate for antiparallel pairs
            K = ok * (sin_s + pa * r) * inv_2pi
            st = ok * sin_s * inv_2pi
            kr = ok * pa * inv_2pi
            A += aJ[jj] * K
            Q += aJ[jj] * st
            crv[jj] = aJ[jj] * kr
            krv[jj] = ai * kr
            rv[jj] = K
            stv[jj] = st
        acc[i, 0] += A
        acc[i, 1] += Q / qi
        for q in range(d):
            sw = 0.0
            for jj in range(nj):
                sw += crv[jj] * WT[q, jj]
            acc[i, 2 + q] += sw
        if not diag:
            for jj in range(nj):
                accJ[0, jj] += ai * rv[jj]
                accJ[1, jj] += ai * stv[jj] * iqJ[jj]
            for q in range(d):
                wiq = wi[q]
                for jj in range(nj):
                    accJ[2 + q, jj] += krv[jj] * wiq
    if not diag:
        for jj in range(nj):
            j = j0 + jj
            acc[j, 0] += accJ[0, jj]
            acc[j, 1] += accJ[1, jj]
            for q in range(d):
                acc[j, 2 + q] += accJ[2 + q, jj]


@njit(cache=True, fastmath=FASTMATH)
def _generic_block(theta, sq, i0, i1, j0, j1, diag, d, bias, act, method, nodes, weights, acc):
    inv_d = 1.0 / d
    loc = np.empty(d)
    for i in range(i0, i1):
        ai = theta[i, 0]
        bi = theta[i, 1 + d] if bias else 0.0
        A = 0.0
        Q = 0.0
        B = 0.0
        for q in range(d):
            loc[q] = 0.0
        jstart = i if diag else j0
        for j in range(jstart, j1):
            aj = theta[j, 0]
            bj = theta[j, 1 + d] if bias else 0.0
            r = _dot(theta, i, theta, j, d) * inv_d if j != i else sq[i]
            det = det_from_rows(theta, i, theta, j, d, sq[i], sq[j], r) if j != i else 0.0
            K, K1, K2, Kr, Kb1, Kb2 = pop_pair(act, method, sq[i], sq[j], r, det, bi, bj, nodes, weights)
            A += aj * K
            Q += aj * K1
            B += aj * Kb1
            cr = aj * Kr
            for q in range(d):
                loc[q] += cr * theta[j, 1 + q]
            if j != i:
                acc[j, 0] += ai * K
                acc[j, 1] += ai * K2
                acc[j, 2 + d] += ai * Kb2
                ci = ai * Kr
                for q in range(d):
                    acc[j, 2 + q] += ci * theta[i, 1 + q]
        acc[i, 0] += A
        acc[i, 1] += Q
        acc[i, 2 + d] += B
        for q in range(d):
            acc[i, 2 + q] += loc[q]


@njit(cache=True)
def _block_task(theta, sq, I, J, nblk, m, d, bias, act, method, nodes, weights, acc, WT, accJ, vec):
    i0 = I * BLOCK
    i1 = min(m, i0 + BLOCK)
    j0 = J * BLOCK
    j1 = min(m, j0 + BLOCK)
    if act == RELU and method == CLOSED and not bias:
        _relu_block(theta, sq, i0, i1, j0, j1, I == J, d, acc, WT, accJ, vec)
    else:
        _generic_block(theta, sq, i0, i1, j0, j1, I == J, d, bias, act, method, nodes, weights, acc)


@njit(cache=True, parallel=True)
def pop_interaction(theta, d, bias, act, method, nodes, weights, acc):
    """acc[i] = sum_l a_l (K, K1, Kr w_l, Kb1)(theta_i, theta_l) over all l (the pair (i, i) included).

    acc has shape (m, d + 3) and is overwritten. Bitwise independent of the thread count.
    """
    m = theta.shape[0]
    sq = np.empty(m)
    for i in prange(m):
        sq[i] = _dot(theta, i, theta, i, d) * (1.0 / d)
        for c in range(d + 3):
            acc[i, c] = 0.0
    nblk = (m + BLOCK - 1) // BLOCK
    # Blocks are grouped into nsb contiguous super-blocks (nsb depends on m only, never on the thread
    # count). Round 0 treats each super-block with itself; then the circle method pairs super-blocks so that
    # in each round every super-block meets exactly one other: the tasks of a round touch disjoint rows.
    nsb = min(SUPER, nblk)
    for P in prange(nsb):
        WT = np.empty((d, BLOCK))  # scratch, allocated once per super-block task
        accJ = np.empty((d + 2, BLOCK))
        vec = np.empty((9, max(BLOCK, d)))
        b0 = P * nblk // nsb
        b1 = (P + 1) * nblk // nsb
        for I in range(b0, b1):
            for J in range(I, b1):
                _block_task(theta, sq, I, J, nblk, m, d, bias, act, method, nodes, weights, acc, WT, accJ, vec)
    ne = nsb + (nsb % 2)
    half = ne // 2
    for rnd_ in range(ne - 1):
        for k in prange(half):
            if k == 0:
                P = ne - 1
                Qb = rnd_
            else:
                P = (rnd_ + k) % (ne - 1)
                Qb = (rnd_ - k + ne - 1) % (ne - 1)
            if P >= nsb or Qb >= nsb:
                continue  # the dummy super-block of an odd count
            WT = np.empty((d, BLOCK))
            accJ = np.empty((d + 2, BLOCK))
            vec = np.empty((9, max(BLOCK, d)))
            lo = min(P, Qb)
            hi = max(P, Qb)
            for I in range(lo * nblk // nsb, (lo + 1) * nblk // nsb):
                for J in range(hi * nblk // nsb, (hi + 1) * nblk // nsb):
                    _block_task(theta, sq, I, J, nblk, m, d, bias, act, method, nodes, weights, acc, WT, accJ, vec)


@njit(cache=True, parallel=True)
def population_velocities(theta, teacher, d, bias, act, method, nodes, weights, out_scale, coef, D, lam, out, rows):
    """Population velocities and the per-row sums for the risk.

    out[i] = -coef D (out_scale * G_student - G_teacher) - lam theta_i with
    G = sum_l a_l grad_{theta_i}[a_i K(theta_i, theta_l)]; rows[i] = (sum_l a_l K_il, sum_k a*_k K*_ik).
    teacher is (k, d + 2): columns [a*, w*, b*] (b* = 0 for a teacher without bias).
    """
    m, p = theta.shape
    acc = np.empty((m, d + 3))
    pop_interaction(theta, d, bias, act, method, nodes, weights, acc)
    kt = teacher.shape[0]
    inv_d = 1.0 / d
    for i in prange(m):
        ai = theta[i, 0]
        bi = theta[i, 1 + d] if bias else 0.0
        qi = _dot(theta, i, theta, i, d) * inv_d
        tA = 0.0
        tQ = 0.0
        tB = 0.0
        tW = np.zeros(d)
        for k in range(kt):
            ak = teacher[k, 0]
            qk = _dot(teacher, k, teacher, k, d) * inv_d
            r = _dot(theta, i, teacher, k, d) * inv_d
            det = det_from_rows(theta, i, teacher, k, d, qi, qk, r)
            K, K1, K2, Kr, Kb1, Kb2 = pop_pair(act, method, qi, qk, r, det, bi, teacher[k, 1 + d], nodes, weights)
            tA += ak * K
            tQ += ak * K1
            tB += ak * Kb1
            cr = ak * Kr
            for q in range(d):
                tW[q] += cr * teacher[k, 1 + q]
        rows[i, 0] = acc[i, 0]
        rows[i, 1] = tA
        g = out_scale * acc[i, 0] - tA
        out[i, 0] = -coef * D[0] * g - lam * theta[i, 0]
        gq = out_scale * acc[i, 1] - tQ
        for q in range(d):
            gw = ai * (gq * theta[i, 1 + q] + out_scale * acc[i, 2 + q] - tW[q]) * inv_d
            out[i, 1 + q] = -coef * D[1 + q] * gw - lam * theta[i, 1 + q]
        if bias:
            gb = ai * (out_scale * acc[i, 2 + d] - tB)
            out[i, 1 + d] = -coef * D[1 + d] * gb - lam * theta[i, 1 + d]


@njit(cache=True, parallel=True)
def pop_teacher_energy(teacher, d, act, method, nodes, weights):
    """E_x[f*(x)^2] = sum_{k,l} a*_k a*_l K(theta*_k, theta*_l), summed in a fixed order."""
    kt = teacher.shape[0]
    part = np.empty(kt)
    inv_d = 1.0 / d
    for k in prange(kt):
        qk = _dot(teacher, k, teacher, k, d) * inv_d
        s = 0.0
        for l in range(kt):
            ql = _dot(teacher, l, teacher, l, d) * inv_d
            r = _dot(teacher, k, teacher, l, d) * inv_d if l != k else qk
            det = det_from_rows(teacher, k, teacher, l, d, qk, ql, r) if l != k else 0.0
            res = pop_pair(act, method, qk, ql, r, det, teacher[k, 1 + d], teacher[l, 1 + d], nodes, weights)
            s += teacher[l, 0] * res[0]
        part[k] = teacher[k, 0] * s
    tot = 0.0
    for k in range(kt):
        tot += part[k]
    return tot


@njit(cache=True)
def pop_risk_from_rows(theta, rows, out_scale, energy):
    """R = E f*^2 / 2 - s sum_i a_i sum_k a*_k K*_ik + s^2/2 sum_i a_i sum_l a_l K_il (serial sum)."""
    cross = 0.0
    self_ = 0.0
    for i in range(theta.shape[0]):
        cross += theta[i, 0] * rows[i, 1]
        self_ += theta[i, 0] * rows[i, 0]
    return 0.5 * energy - out_scale * cross + 0.5 * out_scale * out_scale * self_


@njit(cache=True, parallel=True)
def pop_online_batch(teacher, act, seed, step, X, y, stream):
    """Fresh inputs X[i] ~ N(0, I_d) keyed by (seed, stream, step, i * d + q) and labels y = f*(X)."""
    n, d = X.shape
    kt = teacher.shape[0]
    inv_sqrt_d = 1.0 / math.sqrt(d)
    for i in prange(n):
        for q in range(d):
            X[i, q] = rnd.normal(seed, stream, step, i * d + q)
        s = 0.0
        for k in range(kt):
            z = 0.0
            for q in range(d):
                z += teacher[k, 1 + q] * X[i, q]
            s += teacher[k, 0] * sigma(act, z * inv_sqrt_d + teacher[k, 1 + d])
        y[i] = s
