r"""Finite-volume kernels for the mean-field PDE on a grid (``meanfield.pde``).

Two reduced settings (docs/conventions.md, "The mean-field PDE on a grid"):

* **plane** — the density :math:`\rho(a, w)` of the particles :math:`\theta = (a, w)` of a network with d = 1
  input and no bias, on an ``(na, nw)`` grid of cell averages;
* **radial** — the density :math:`\rho(s)` of :math:`s = |w|/\sqrt d` for a rotation-invariant problem with
  a fixed output weight, on ``n`` cells of :math:`[0, s_{\max}]`.

Both equations have the conservative form :math:`\partial_t\rho + \nabla\cdot(\rho v) = D\Delta\rho`. A step
is a finite-volume update: fluxes through every cell face, upwind (``order = 1``) or MUSCL with the van Leer
limiter (``order = 2``), the diffusive flux :math:`-D(\rho_{i+1}-\rho_i)/h`, forward Euler (order 1) or the
SSP Runge–Kutta 2 / Heun step (order 2). Each face flux is computed by one formula from the same inputs by
both of its cells, so the update telescopes: the mass in the grid changes only by the boundary fluxes, which
are accumulated into the outflow.

The velocity field comes from the current density through a *separable* structure, never cell x cell:

* plane: :math:`f(x_k) = \sum_j \sigma(w_j x_k) A_j` with :math:`A_j = \sum_i a_i\rho_{ij} h_a h_w` (the
  marginal output weight of column j), at N input nodes :math:`x_k` with weights :math:`q_k` (training points,
  or a quadrature rule of :math:`N(0, 1)`); then :math:`g(w) = \sum_k q_k r_k\sigma(w x_k)` and
  :math:`h(w) = \sum_k q_k r_k \sigma'(w x_k) x_k` with :math:`r_k = f(x_k) - y_k`, in O(N (na + nw)) work;
* radial: :math:`F(R_k) = a_0 \sum_c \rho_c h\,\Phi(s_c R_k)` at N radial nodes, then
  :math:`\Psi'(s) = \sum_k q_k (F(R_k) - F^*(R_k)) R_k\Phi'(s R_k)` from precomputed tables.

**Time step** (the CFL rule): with :math:`S = \sum_{\rm dims} (c_o \max|v|/h + 2D/h^2)`, :math:`c_o = 1`
for order 1 and 2 for order 2, the step is :math:`dt = \mathrm{cfl}/S` (``cfl <= 1``), capped by
``dt_max`` and by the time left to ``t_end``. Then every forward-Euler stage maps non-negative densities to
non-negative densities (each cell loses at most :math:`dt\,S\,\rho` to its faces). In the second Heun stage
the bound is re-evaluated with the stage velocities; if it fails, the step is redone with the smaller dt.

**Determinism.** Parallel loops run over independent outputs (rows of cells, columns, nodes); every sum has
a fixed order; the maximum speeds are exact. Results are therefore bitwise identical at any thread count.
Every parallel site has a serial twin compiled from the same row function; ``par`` chooses between them (the
Python layer passes ``par = 0`` below a measured amount of work, so a busy machine never makes small grids
slower).

Step loops return ``(status, steps_done, t, outflow)``: status 0 ok, 1 a non-finite density, 2 a negative
density below -TINY (impossible by the CFL rule; reported, not raised; values in [-TINY, TINY) are
flushed to 0 and their mass counted as outflow, because subnormal rounding is absolute), 3 the step was halved 30 times. Kernels never raise.
"""

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from .activation import SOFTPLUS, dsigma, sigma

OK, NONFINITE, NEGATIVE, STALLED = 0, 1, 2, 3


class Plane(NamedTuple):
    """Grid and velocity-field data of the plane (a, w) setting (read-only in the kernels)."""

    a_c: np.ndarray  # (na,) cell centres in a
    a_f: np.ndarray  # (na + 1,) faces in a
    w_c: np.ndarray  # (nw,) cell centres in w
    w_f: np.ndarray  # (nw + 1,) faces in w
    ha: float
    hw: float
    x: np.ndarray  # (N,) input nodes
    q: np.ndarray  # (N,) node weights, summing to 1
    y: np.ndarray  # (N,) targets at the nodes
    act: int  # activation code
    lr_a: float  # eta * eta_a
    lr_w: float  # eta * eta_w
    lam: float  # weight decay
    tau: float  # temperature: diffusion coefficient


class Radial(NamedTuple):
    """Grid, tables and velocity-field data of the radial setting (read-only in the kernels)."""

    s_c: np.ndarray  # (n,) cell centres
    s_f: np.ndarray  # (n + 1,) faces, s_f[0] = 0
    h: float
    q: np.ndarray  # (N,) radial node weights, summing to 1
    phi_t: np.ndarray  # (N, n): Phi(s_c[c] R_k)
    dphi_f: np.ndarray  # (n + 1, N): R_k Phi'(s_f[f] R_k)
    f_star: np.ndarray  # (N,) F*(R_k), the target at the radial nodes
    a0: float  # fixed output weight of the student
    coef: float  # eta * eta_w * a0 / d
    lam: float
    drift: float  # tau (d - 1) / d: Bessel drift coefficient (times 1/s)
    diff: float  # tau / d: diffusion coefficient in s


class Scheme(NamedTuple):
    """How to step: spatial/temporal order (1 or 2), CFL number, dt cap, parallel flag."""

    order: int
    cfl: float
    dt_max: float
    par: int


# --------------------------------------------------------------------------------------------------------
# reconstruction and fluxes
# --------------------------------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _vanleer(dm, dp):
    """Van Leer limited slope: harmonic mean of the one-sided differences, 0 at extrema (|slope| <= 2 min)."""
    if dm * dp <= 0.0:
        return 0.0
    return 2.0 * dm * dp / (dm + dp)


@njit(cache=True, inline="always")
def _adv_flux(um2, um1, u0, u1, v, order):
    """Advective flux through the face between cells (-1) and (0), stencil u_{-2}, u_{-1}, u_0, u_1."""
    if order == 1:
        return v * um1 if v > 0.0 else v * u0
    if v > 0.0:
        return v * (um1 + 0.5 * _vanleer(um1 - um2, u0 - um1))
    return v * (u0 - 0.5 * _vanleer(u0 - um1, u1 - u0))


# --------------------------------------------------------------------------------------------------------
# plane setting: velocity field from the density
# --------------------------------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _marginal_col(j, rho, a_c, cell, A):
    s = 0.0
    for i in range(rho.shape[0]):
        s += a_c[i] * rho[i, j]
    A[j] = s * cell


@njit(cache=True, parallel=True)
def _marginal_par(rho, a_c, cell, A):
    for j in prange(rho.shape[1]):
        _marginal_col(j, rho, a_c, cell, A)


@njit(cache=True)
def _marginal_ser(rho, a_c, cell, A):
    for j in range(rho.shape[1]):
        _marginal_col(j, rho, a_c, cell, A)


@njit(cache=True, inline="always")
def _residual_node(k, wpts, A, x, y, act, r):
    s = 0.0
    xk = x[k]
    for j in range(wpts.shape[0]):
        s += sigma(act, wpts[j] * xk) * A[j]
    r[k] = s - y[k]


@njit(cache=True, parallel=True)
def _residuals_par(wpts, A, x, y, act, r):
    for k in prange(x.shape[0]):
        _residual_node(k, wpts, A, x, y, act, r)


@njit(cache=True)
def _residuals_ser(wpts, A, x, y, act, r):
    for k in range(x.shape[0]):
        _residual_node(k, wpts, A, x, y, act, r)


@njit(cache=True, inline="always")
def _gh_point(j, wq, x, qr, act, g, h):
    sg = 0.0
    sh = 0.0
    w = wq[j]
    for k in range(x.shape[0]):
        z = w * x[k]
        sg += qr[k] * sigma(act, z)
        sh += qr[k] * dsigma(act, z) * x[k]
    g[j] = sg
    h[j] = sh


@njit(cache=True, parallel=True)
def _gh_par(wq, x, qr, act, g, h):
    for j in prange(wq.shape[0]):
        _gh_point(j, wq, x, qr, act, g, h)


@njit(cache=True)
def _gh_ser(wq, x, qr, act, g, h):
    for j in range(wq.shape[0]):
        _gh_point(j, wq, x, qr, act, g, h)


@njit(cache=True)
def residuals(wpts, A, x, y, act, r, par):
    """r[k] = sum_j sigma(wpts[j] x[k]) A[j] - y[k]: the residual of the network whose output weight mass at
    input weight wpts[j] is A[j] (a grid column, or a weighted particle a_j omega_j)."""
    if par:
        _residuals_par(wpts, A, x, y, act, r)
    else:
        _residuals_ser(wpts, A, x, y, act, r)


@njit(cache=True)
def potential_gradients(wq, x, q, r, act, g, h, par):
    """g[j] = sum_k q_k r_k sigma(wq[j] x_k), h[j] = sum_k q_k r_k sigma'(wq[j] x_k) x_k.

    The velocity of a particle (a, w) is then (-lr_a g(w) - lam a, -lr_w a h(w) - lam w).
    """
    qr = np.empty(x.shape[0])
    for k in range(x.shape[0]):
        qr[k] = q[k] * r[k]
    if par:
        _gh_par(wq, x, qr, act, g, h)
    else:
        _gh_ser(wq, x, qr, act, g, h)


@njit(cache=True)
def plane_field(rho, P, A, r, g, h, par):
    """Fill A (nw,), r (N,), g (nw,) at the w-centres and h (nw + 1,) at the w-faces from the density."""
    if par:
        _marginal_par(rho, P.a_c, P.ha * P.hw, A)
    else:
        _marginal_ser(rho, P.a_c, P.ha * P.hw, A)
    residuals(P.w_c, A, P.x, P.y, P.act, r, par)
    qr = np.empty(P.x.shape[0])
    for k in range(P.x.shape[0]):
        qr[k] = P.q[k] * r[k]
    # g is needed at the centres, h at the faces: two passes of the same row function
    hc = np.empty(P.w_c.shape[0])
    gf = np.empty(P.w_f.shape[0])
    if par:
        _gh_par(P.w_c, P.x, qr, P.act, g, hc)
        _gh_par(P.w_f, P.x, qr, P.act, gf, h)
    else:
        _gh_ser(P.w_c, P.x, qr, P.act, g, hc)
        _gh_ser(P.w_f, P.x, qr, P.act, gf, h)


@njit(cache=True)
def plane_risk(r, q):
    """R = 1/2 sum_k q_k r_k^2 (serial, fixed order)."""
    s = 0.0
    for k in range(r.shape[0]):
        s += q[k] * r[k] * r[k]
    return 0.5 * s


@njit(cache=True)
def _plane_rate(P, g, h, order):
    """S = c_o (max|v_a|/h_a + max|v_w|/h_w) + 2 tau (1/h_a^2 + 1/h_w^2): an upper bound of the CFL rate."""
    ga = 0.0
    for j in range(g.shape[0]):
        ga = max(ga, abs(g[j]))
    hm = 0.0
    for j in range(h.shape[0]):
        hm = max(hm, abs(h[j]))
    amax = max(abs(P.a_f[0]), abs(P.a_f[-1]))
    wmax = max(abs(P.w_f[0]), abs(P.w_f[-1]))
    va = P.lr_a * ga + P.lam * amax
    vw = P.lr_w * amax * hm + P.lam * wmax
    co = 1.0 if order == 1 else 2.0
    return co * (va / P.ha + vw / P.hw) + 2.0 * P.tau * (1.0 / (P.ha * P.ha) + 1.0 / (P.hw * P.hw))


# --------------------------------------------------------------------------------------------------------
# plane setting: divergence of the fluxes
# --------------------------------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _at(rho, i, j):
    """rho[i, j], zero outside the grid (ghost cells)."""
    if i < 0 or j < 0 or i >= rho.shape[0] or j >= rho.shape[1]:
        return 0.0
    return rho[i, j]


@njit(cache=True, inline="always")
def _aflux(rho, P, g, fi, j, order):
    """Total flux in a through the face a_f[fi] (between rows fi - 1 and fi), column j."""
    v = -P.lr_a * g[j] - P.lam * P.a_f[fi]
    um2 = _at(rho, fi - 2, j)
    um1 = _at(rho, fi - 1, j)
    u0 = _at(rho, fi, j)
    u1 = _at(rho, fi + 1, j)
    return _adv_flux(um2, um1, u0, u1, v, order) - P.tau * (u0 - um1) / P.ha


@njit(cache=True, inline="always")
def _plane_row(i, rho, P, g, h, order, Fw, bw, ba_lo, ba_hi, base, c0, c1, dt, dst):
    """Row i of dst = c0 base + c1 (rho + dt L(rho)), L = -div(flux); boundary fluxes of the row to bw, ba_*."""
    nw = rho.shape[1]
    ai = P.a_c[i]
    for f in range(nw + 1):
        v = -P.lr_w * ai * h[f] - P.lam * P.w_f[f]
        um2 = _at(rho, i, f - 2)
        um1 = _at(rho, i, f - 1)
        u0 = _at(rho, i, f)
        u1 = _at(rho, i, f + 1)
        Fw[i, f] = _adv_flux(um2, um1, u0, u1, v, order) - P.tau * (u0 - um1) / P.hw
    inv_ha = 1.0 / P.ha
    inv_hw = 1.0 / P.hw
    for j in range(nw):
        lo = _aflux(rho, P, g, i, j, order)
        hi = _aflux(rho, P, g, i + 1, j, order)
        L = -(hi - lo) * inv_ha - (Fw[i, j + 1] - Fw[i, j]) * inv_hw
        dst[i, j] = c0 * base[i, j] + c1 * (rho[i, j] + dt * L)
        if i == 0:
            ba_lo[j] = -lo
        if i == rho.shape[0] - 1:
            ba_hi[j] = hi
    bw[i] = Fw[i, nw] - Fw[i, 0]


@njit(cache=True, parallel=True)
def _plane_rows_par(rho, P, g, h, order, Fw, bw, ba_lo, ba_hi, base, c0, c1, dt, dst):
    for i in prange(rho.shape[0]):
        _plane_row(i, rho, P, g, h, order, Fw, bw, ba_lo, ba_hi, base, c0, c1, dt, dst)


@njit(cache=True)
def _plane_rows_ser(rho, P, g, h, order, Fw, bw, ba_lo, ba_hi, base, c0, c1, dt, dst):
    for i in range(rho.shape[0]):
        _plane_row(i, rho, P, g, h, order, Fw, bw, ba_lo, ba_hi, base, c0, c1, dt, dst)


@njit(cache=True)
def plane_stage(rho, P, g, h, order, Fw, bw, ba_lo, ba_hi, base, c0, c1, dt, dst, par):
    """dst = c0 base + c1 (rho + dt L(rho)) (one forward-Euler stage, convexly combined); returns the outward
    flux through the boundary at rho (mass per unit time), summed in a fixed order."""
    if par:
        _plane_rows_par(rho, P, g, h, order, Fw, bw, ba_lo, ba_hi, base, c0, c1, dt, dst)
    else:
        _plane_rows_ser(rho, P, g, h, order, Fw, bw, ba_lo, ba_hi, base, c0, c1, dt, dst)
    sa = 0.0
    for j in range(rho.shape[1]):
        sa += ba_lo[j] + ba_hi[j]
    sw = 0.0
    for i in range(rho.shape[0]):
        sw += bw[i]
    return sa * P.hw + sw * P.ha


#: Densities below this are set to 0 (their mass, < 1e-290 in all, goes to the outflow): in the subnormal range
#: rounding is absolute, not relative, and could make a cell slightly negative despite the CFL rule.
TINY = 1e-300


@njit(cache=True)
def _check(rho, vol):
    """(status, flushed mass): 0 if every entry is finite and >= -TINY, 1 if one is non-finite, 2 if one is
    negative; entries below TINY are set to 0 and their mass (times vol) returned (serial, fixed order)."""
    flushed = 0.0
    for i in range(rho.shape[0]):
        for j in range(rho.shape[1]):
            v = rho[i, j]
            if not math.isfinite(v):
                return NONFINITE, 0.0
            if v < TINY:
                if v < -TINY:
                    return NEGATIVE, 0.0
                flushed += v * vol
                rho[i, j] = 0.0
    return OK, flushed


@njit(cache=True)
def plane_advance(rho, P, S, t0, n_max, t_end, outflow0):
    """Advance the density ``rho`` (na, nw) in place by at most ``n_max`` steps, stopping at ``t_end``.

    Returns (status, steps_done, t, outflow); on a bad status ``rho`` holds the last good density.
    """
    na, nw = rho.shape
    N = P.x.shape[0]
    A = np.empty(nw)
    r = np.empty(N)
    g = np.empty(nw)
    h = np.empty(nw + 1)
    g0 = np.empty(nw)
    h0 = np.empty(nw + 1)
    rho1 = np.empty((na, nw))
    rho2 = np.empty((na, nw))
    Fw = np.empty((na, nw + 1))
    bw = np.empty(na)
    ba_lo = np.empty(nw)
    ba_hi = np.empty(nw)
    t = t0
    outflow = outflow0
    steps = 0
    while steps < n_max and t < t_end:
        plane_field(rho, P, A, r, g0, h0, S.par)
        rate = _plane_rate(P, g0, h0, S.order)
        dt = S.cfl / rate if rate > 0.0 else S.dt_max
        dt = min(dt, S.dt_max)
        if not math.isfinite(dt):  # nothing moves and no cap: any step is exact
            dt = 1.0
        last = False
        if t + dt >= t_end:
            dt = t_end - t
            last = True
        out1 = plane_stage(rho, P, g0, h0, S.order, Fw, bw, ba_lo, ba_hi, rho, 0.0, 1.0, dt, rho1, S.par)
        if S.order == 1:
            gained = dt * out1
            new = rho1
        else:
            halvings = 0
            while True:
                plane_field(rho1, P, A, r, g, h, S.par)
                rate1 = _plane_rate(P, g, h, S.order)
                if dt * rate1 <= 1.0 or halvings >= 30:
                    break
                dt = S.cfl / rate1  # the stage velocities are faster: redo the step with their bound
                last = False
                halvings += 1
                out1 = plane_stage(rho, P, g0, h0, S.order, Fw, bw, ba_lo, ba_hi, rho, 0.0, 1.0, dt, rho1, S.par)
            if halvings >= 30:
                return STALLED, steps, t, outflow
            out2 = plane_stage(rho1, P, g, h, S.order, Fw, bw, ba_lo, ba_hi, rho, 0.5, 0.5, dt, rho2, S.par)
            gained = 0.5 * dt * (out1 + out2)
            new = rho2
        status, flushed = _check(new, P.ha * P.hw)
        if status != OK:
            return status, steps, t, outflow
        rho[:, :] = new
        outflow += gained + flushed
        t = t_end if last else t + dt
        steps += 1
    return OK, steps, t, outflow


# --------------------------------------------------------------------------------------------------------
# radial setting
# --------------------------------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _radial_node(k, rho, R, F):
    s = 0.0
    row = R.phi_t[k]
    for c in range(rho.shape[0]):
        s += row[c] * rho[c]
    F[k] = R.a0 * R.h * s


@njit(cache=True, parallel=True)
def _radial_nodes_par(rho, R, F):
    for k in prange(R.q.shape[0]):
        _radial_node(k, rho, R, F)


@njit(cache=True)
def _radial_nodes_ser(rho, R, F):
    for k in range(R.q.shape[0]):
        _radial_node(k, rho, R, F)


@njit(cache=True, inline="always")
def _radial_face(f, R, qr, dpsi):
    s = 0.0
    row = R.dphi_f[f]
    for k in range(qr.shape[0]):
        s += qr[k] * row[k]
    dpsi[f] = s


@njit(cache=True, parallel=True)
def _radial_faces_par(R, qr, dpsi):
    for f in prange(R.dphi_f.shape[0]):
        _radial_face(f, R, qr, dpsi)


@njit(cache=True)
def _radial_faces_ser(R, qr, dpsi):
    for f in range(R.dphi_f.shape[0]):
        _radial_face(f, R, qr, dpsi)


@njit(cache=True)
def radial_field(rho, R, F, r, dpsi, par):
    """F (N,) = student output at the radial nodes, r = F - F*, dpsi (n + 1,) = Psi'(s_f) at the faces."""
    if par:
        _radial_nodes_par(rho, R, F)
    else:
        _radial_nodes_ser(rho, R, F)
    N = R.q.shape[0]
    qr = np.empty(N)
    for k in range(N):
        r[k] = F[k] - R.f_star[k]
        qr[k] = R.q[k] * r[k]
    if par:
        _radial_faces_par(R, qr, dpsi)
    else:
        _radial_faces_ser(R, qr, dpsi)


@njit(cache=True, inline="always")
def _radial_velocity(R, dpsi, f):
    """Velocity at face f (f >= 1): -coef Psi'(s) - lam s + drift / s."""
    s = R.s_f[f]
    return -R.coef * dpsi[f] - R.lam * s + R.drift / s


@njit(cache=True)
def _radial_rate(R, dpsi, order):
    vmax = 0.0
    for f in range(1, dpsi.shape[0]):
        vmax = max(vmax, abs(_radial_velocity(R, dpsi, f)))
    co = 1.0 if order == 1 else 2.0
    return co * vmax / R.h + 2.0 * R.diff / (R.h * R.h)


@njit(cache=True, inline="always")
def _at1(rho, i):
    if i < 0 or i >= rho.shape[0]:
        return 0.0
    return rho[i]


@njit(cache=True)
def radial_rhs(rho, R, dpsi, order, L, F):
    """L = -d(flux)/ds per cell; F (n + 1,) face fluxes; returns the outward flux at s_max.

    The face s = 0 carries no flux (the origin of R^d is an interior point: nothing crosses it).
    """
    n = rho.shape[0]
    F[0] = 0.0
    for f in range(1, n + 1):
        v = _radial_velocity(R, dpsi, f)
        um1 = _at1(rho, f - 1)
        u0 = _at1(rho, f)
        F[f] = _adv_flux(_at1(rho, f - 2), um1, u0, _at1(rho, f + 1), v, order) - R.diff * (u0 - um1) / R.h
    inv = 1.0 / R.h
    for c in range(n):
        L[c] = -(F[c + 1] - F[c]) * inv
    return F[n]


@njit(cache=True)
def radial_advance(rho, R, S, t0, n_max, t_end, outflow0):
    """Advance the radial density ``rho`` (n,) in place; same contract as :func:`plane_advance`."""
    n = rho.shape[0]
    N = R.q.shape[0]
    Fn = np.empty(N)
    r = np.empty(N)
    dpsi = np.empty(n + 1)
    L = np.empty(n)
    L2 = np.empty(n)
    Ff = np.empty(n + 1)
    rho1 = np.empty(n)
    t = t0
    outflow = outflow0
    steps = 0
    while steps < n_max and t < t_end:
        radial_field(rho, R, Fn, r, dpsi, S.par)
        rate = _radial_rate(R, dpsi, S.order)
        dt = S.cfl / rate if rate > 0.0 else S.dt_max
        dt = min(dt, S.dt_max)
        if not math.isfinite(dt):  # nothing moves and no cap: any step is exact
            dt = 1.0
        last = False
        if t + dt >= t_end:
            dt = t_end - t
            last = True
        out1 = radial_rhs(rho, R, dpsi, S.order, L, Ff)
        if S.order == 1:
            for c in range(n):
                rho1[c] = rho[c] + dt * L[c]
            gained = dt * out1
        else:
            halvings = 0
            while True:
                for c in range(n):
                    rho1[c] = rho[c] + dt * L[c]
                radial_field(rho1, R, Fn, r, dpsi, S.par)
                rate1 = _radial_rate(R, dpsi, S.order)
                if dt * rate1 <= 1.0 or halvings >= 30:
                    break
                dt = S.cfl / rate1
                last = False
                halvings += 1
            if halvings >= 30:
                return STALLED, steps, t, outflow
            out2 = radial_rhs(rho1, R, dpsi, S.order, L2, Ff)
            for c in range(n):
                rho1[c] = 0.5 * rho[c] + 0.5 * (rho1[c] + dt * L2[c])
            gained = 0.5 * dt * (out1 + out2)
        flushed = 0.0
        for c in range(n):
            v = rho1[c]
            if not math.isfinite(v):
                return NONFINITE, steps, t, outflow
            if v < TINY:
                if v < -TINY:
                    return NEGATIVE, steps, t, outflow
                flushed += v * R.h
                rho1[c] = 0.0
        rho[:] = rho1
        outflow += gained + flushed
        t = t_end if last else t + dt
        steps += 1
    return OK, steps, t, outflow


@njit(cache=True, inline="always")
def _even(act, y):
    return 0.5 * (sigma(act, y) + sigma(act, -y))


@njit(cache=True, inline="always")
def _dodd(act, y):
    return 0.5 * (dsigma(act, y) - dsigma(act, -y))


@njit(cache=True, inline="always")
def _even_dodd(act, y):
    """(_even(act, y), _dodd(act, y)) sharing the transcendental evaluations: for softplus
    (sigma(y) + sigma(-y))/2 = |y|/2 + log1p(e) and (sigma'(y) - sigma'(-y))/2 = sign(y) (1 - e)/(2 (1 + e)) with
    e = exp(-|y|) (1 - e = -expm1(-|y|) without cancellation): two transcendentals instead of six."""
    if act == SOFTPLUS:
        a = abs(y)
        em = math.expm1(-a)
        e = 1.0 + em
        od = -0.5 * em / (1.0 + e)
        return 0.5 * a + math.log1p(e), (od if y >= 0.0 else -od)
    return _even(act, y), _dodd(act, y)


@njit(cache=True, parallel=True)
def radial_tables(act, s_c, s_f, Rn, un, wn, phi_t, dphi_f):
    r"""phi_t[k, c] = Phi(s_c[c] Rn[k]), dphi_f[f, k] = Rn[k] Phi'(s_f[f] Rn[k]).

    :math:`\Phi(z) = E_t[\sigma(zt)] = \sum_l w_l \sigma_{\rm even}(z\sqrt{u_l})` and
    :math:`\Phi'(z) = E_t[t\sigma'(zt)] = \sum_l w_l \sqrt{u_l}\,\sigma'_{\rm odd}(z\sqrt{u_l})` with the rule
    (un, wn) for :math:`u = t^2` (t the cosine between a uniform direction and a fixed one).
    """
    N = Rn.shape[0]
    L = un.shape[0]
    st = np.sqrt(un)
    for k in prange(N):
        Rk = Rn[k]
        for c in range(s_c.shape[0]):
            z = s_c[c] * Rk
            s = 0.0
            for l in range(L):
                s += wn[l] * _even(act, z * st[l])
            phi_t[k, c] = s
    for f in prange(s_f.shape[0]):
        for k in range(N):
            z = s_f[f] * Rn[k]
            s = 0.0
            for l in range(L):
                s += wn[l] * st[l] * _dodd(act, z * st[l])
            dphi_f[f, k] = Rn[k] * s


@njit(cache=True)
def radial_phi(act, z, un, wn, out, dout):
    """out[i] = Phi(z[i]), dout[i] = Phi'(z[i]) (for teachers and particles)."""
    st = np.sqrt(un)
    for i in range(z.shape[0]):
        s = 0.0
        ds = 0.0
        for l in range(un.shape[0]):
            ev, od = _even_dodd(act, z[i] * st[l])
            s += wn[l] * ev
            ds += wn[l] * st[l] * od
        out[i] = s
        dout[i] = ds


@njit(cache=True)
def radial_particles(act, s, R, q, f_star, a0, u, wu, coef, lam, v):
    r"""Velocities v[j] = -coef Psi'(s_j) - lam s_j of radial particles s (m,) for their own measure, each of
    weight 1/m; returns the risk 1/2 sum_k q_k (F(R_k) - F*(R_k))^2. One pass over (j, k) pairs evaluates
    both Phi and Phi' (serial, fixed order)."""
    m = s.shape[0]
    N = R.shape[0]
    L = u.shape[0]
    dphi = np.empty((m, N))
    F = np.zeros(N)
    st = np.sqrt(u)
    for j in range(m):
        for k in range(N):
            z = s[j] * R[k]
            p = 0.0
            dp = 0.0
            for l in range(L):
                ev, od = _even_dodd(act, z * st[l])
                p += wu[l] * ev
                dp += wu[l] * st[l] * od
            F[k] += p
            dphi[j, k] = R[k] * dp
    risk = 0.0
    qr = np.empty(N)
    for k in range(N):
        rk = a0 * F[k] / m - f_star[k]
        qr[k] = q[k] * rk
        risk += q[k] * rk * rk
    for j in range(m):
        acc = 0.0
        for k in range(N):
            acc += qr[k] * dphi[j, k]
        v[j] = -coef * acc - lam * s[j]
    return 0.5 * risk
