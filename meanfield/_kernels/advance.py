r"""Integrators looped over many steps inside one compiled call.

``advance(theta, field, stepper, step0, n_steps)`` moves the particles ``theta`` (in place) through
``n_steps`` steps numbered ``step0, step0 + 1, ...`` and returns ``(status, steps_done)``: status 0 when all
steps succeeded, 1 when step ``step0 + steps_done`` produced a non-finite value or a coordinate beyond
``stepper.blowup``; ``theta`` then holds the last good state. Kernels never raise.

With velocity field :math:`F`, step :math:`h` and global step number :math:`s`:

* EULER:           :math:`\theta \leftarrow \theta + h F(\theta)` (one full-batch gradient-descent step)
* HEUN:            :math:`k_1 = F(\theta), k_2 = F(\theta + h k_1), \theta \leftarrow \theta + \tfrac h2 (k_1 + k_2)`
* RK4:             the classical fourth-order Runge–Kutta step
* EULER_MARUYAMA:  :math:`\theta \leftarrow \theta + h F(\theta) + \sqrt{2\tau h}\,\xi_s`
* SGD:             Euler on the risk of a batch of B points drawn without replacement, plus the noise
                   term when :math:`\tau > 0`.

The noise :math:`\xi_s[j, q]` and the batch of step s are pure functions of (seed, s, index)
(``random.py``), so runs are reproducible at any thread count and resumable from (seed, step).
"""

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from . import random as rnd
from .finite import SMALL_PAIRS, field_small, residuals, velocities
from .linearized import lin_field_small, lin_residuals
from .population import pop_online_batch, population_velocities

FINITE, POPULATION, ONLINE, LINEARIZED = 0, 1, 2, 3
#: Counter-based stream of the fresh Gaussian inputs of online SGD (NOISE = 0 and BATCH = 1 in random.py).
ONLINE_STREAM = 2
_NO_TEACHER = np.zeros((0, 2))
_NO_NODES = np.zeros(0)
_NO_REFERENCE = np.zeros((0, 2))
EULER, HEUN, RK4, EULER_MARUYAMA, SGD = 0, 1, 2, 3, 4


class Field(NamedTuple):
    """Arrays and scalars that define the velocity field F(theta)."""

    kind: int  # FINITE, POPULATION, ONLINE or LINEARIZED
    act: int  # activation code
    bias: bool
    X: np.ndarray  # (n, d) inputs; POPULATION: (0, d); ONLINE: (B, d) buffer refilled every step
    y: np.ndarray  # (n,) targets; POPULATION: (0,); ONLINE: (B,) buffer
    D: np.ndarray  # (p,) per-coordinate learning-rate multipliers
    out_scale: float  # c m^-alpha
    coef: float  # eta m^(beta - alpha) / c
    lam: float  # weight decay
    teacher: np.ndarray = _NO_TEACHER  # (k, d + 2) teacher [a*, w*, b*] (POPULATION, ONLINE)
    method: int = 0  # population.CLOSED or population.QUAD
    nodes: np.ndarray = _NO_NODES  # (q,) probabilists' Gauss-Hermite nodes (POPULATION with QUAD)
    weights: np.ndarray = _NO_NODES  # (q,) their weights, summing to one
    theta0: np.ndarray = _NO_REFERENCE  # (m, p) linearisation point (LINEARIZED)
    f0: np.ndarray = _NO_NODES  # (n,) outputs f(X; theta0) (LINEARIZED)


class Stepper(NamedTuple):
    """How to step: integrator code, step size, temperature, batch size (0 = full), seed, blow-up bound."""

    integrator: int
    dt: float
    temperature: float
    batch: int
    seed: int
    blowup: float


@njit(cache=True)
def velocity(field, theta, idx, nb, r, out):
    """out = F(theta) on the points X[idx[:nb]] (FINITE, ONLINE) or on the population (POPULATION)."""
    small = nb * theta.shape[0] <= SMALL_PAIRS
    if (field.kind == FINITE or field.kind == ONLINE) and small:
        field_small(theta, field.X, field.y, idx, nb, field.act, field.bias, field.out_scale, field.coef, field.D,
                    field.lam, r, out)
    elif field.kind == FINITE or field.kind == ONLINE:
        residuals(theta, field.X, field.y, idx, nb, field.act, field.bias, field.out_scale, r)
        velocities(theta, theta, field.X, idx, nb, r, field.act, field.bias, field.coef, field.D, field.lam, out)
    elif field.kind == LINEARIZED and small:
        lin_field_small(theta, field.theta0, field.X, field.y, field.f0, idx, nb, field.act, field.bias,
                        field.out_scale, field.coef, field.D, field.lam, r, out)
    elif field.kind == LINEARIZED:
        lin_residuals(theta, field.theta0, field.X, field.y, field.f0, idx, nb, field.act, field.bias,
                      field.out_scale, r)
        velocities(theta, field.theta0, field.X, idx, nb, r, field.act, field.bias, field.coef, field.D,
                   field.lam, out)
    elif field.kind == POPULATION:
        rows = np.empty((theta.shape[0], 2))
        population_velocities(theta, field.teacher, field.teacher.shape[1] - 2, field.bias, field.act,
                              field.method, field.nodes, field.weights, field.out_scale, field.coef, field.D,
                              field.lam, out, rows)


@njit(cache=True, parallel=True)
def _add_noise(theta, amp, seed, step):
    m, p = theta.shape
    for j in prange(m):
        for q in range(p):
            theta[j, q] += amp * rnd.normal(seed, rnd.NOISE, step, j * p + q)


@njit(cache=True)
def _add_noise_serial(theta, amp, seed, step):
    m, p = theta.shape
    for j in range(m):
        for q in range(p):
            theta[j, q] += amp * rnd.normal(seed, rnd.NOISE, step, j * p + q)


@njit(cache=True, parallel=True)
def _axpy_parallel(out, x, h, v):
    m, p = x.shape
    for j in prange(m):
        for q in range(p):
            out[j, q] = x[j, q] + h * v[j, q]


@njit(cache=True)
def _axpy(out, x, h, v, small):
    """out = x + h * v; row-parallel unless ``small`` (elementwise, so the same numbers either way)."""
    if small:
        m, p = x.shape
        for j in range(m):
            for q in range(p):
                out[j, q] = x[j, q] + h * v[j, q]
    else:
        _axpy_parallel(out, x, h, v)


@njit(cache=True)
def _is_bad(theta, blowup):
    m, p = theta.shape
    for j in range(m):
        for q in range(p):
            if not abs(theta[j, q]) <= blowup:  # also true for NaN
                return True
    return False


@njit(cache=True)
def _draw_batch(idx, swaps, nb, seed, step):
    """Partial Fisher–Yates: idx[:nb] becomes a uniform batch without replacement; swaps records the moves."""
    n = idx.shape[0]
    for k in range(nb):
        u = rnd.bits(seed, rnd.BATCH, step, k)
        target = k + np.int64(u % np.uint64(n - k))
        swaps[k] = target
        idx[k], idx[target] = idx[target], idx[k]


@njit(cache=True)
def _undo_batch(idx, swaps, nb):
    for k in range(nb - 1, -1, -1):
        target = swaps[k]
        idx[k], idx[target] = idx[target], idx[k]


@njit(cache=True)
def advance(theta, field, stepper, step0, n_steps):
    n = field.X.shape[0]
    h = stepper.dt
    code = stepper.integrator
    idx = np.arange(n)
    nb = stepper.batch if code == SGD else n
    swaps = np.empty(max(nb, 1), np.int64)
    r = np.empty(n, dtype=theta.dtype)
    k1 = np.empty_like(theta)
    k2 = np.empty_like(theta)
    k3 = np.empty_like(theta)
    k4 = np.empty_like(theta)
    tmp = np.empty_like(theta)
    prev = np.empty_like(theta)
    amp = 0.0
    if code == EULER_MARUYAMA or code == SGD:
        amp = math.sqrt(2.0 * stepper.temperature * h)
    m, p = theta.shape
    small = nb * m <= SMALL_PAIRS  # the evaluations run serially: no parallel region for the rest of the step
    for s in range(n_steps):
        step = step0 + s
        prev[:] = theta
        if field.kind == ONLINE:
            pop_online_batch(field.teacher, field.act, stepper.seed, step, field.X, field.y, ONLINE_STREAM)
        elif code == SGD:
            _draw_batch(idx, swaps, nb, stepper.seed, step)
        velocity(field, theta, idx, nb, r, k1)
        if code == HEUN:
            _axpy(tmp, theta, h, k1, small)
            velocity(field, tmp, idx, nb, r, k2)
            for j in range(m):
                for q in range(p):
                    theta[j, q] += 0.5 * h * (k1[j, q] + k2[j, q])
        elif code == RK4:
            _axpy(tmp, theta, 0.5 * h, k1, small)
            velocity(field, tmp, idx, nb, r, k2)
            _axpy(tmp, theta, 0.5 * h, k2, small)
            velocity(field, tmp, idx, nb, r, k3)
            _axpy(tmp, theta, h, k3, small)
            velocity(field, tmp, idx, nb, r, k4)
            for j in range(m):
                for q in range(p):
                    theta[j, q] += (h / 6.0) * (k1[j, q] + 2.0 * k2[j, q] + 2.0 * k3[j, q] + k4[j, q])
        else:
            _axpy(theta, theta, h, k1, small)
        if amp > 0.0 and small:
            _add_noise_serial(theta, amp, stepper.seed, step)
        elif amp > 0.0:
            _add_noise(theta, amp, stepper.seed, step)
        if code == SGD and field.kind != ONLINE:
            _undo_batch(idx, swaps, nb)
        if _is_bad(theta, stepper.blowup):
            theta[:] = prev
            return 1, s
    return 0, n_steps
