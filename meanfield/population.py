r"""Infinite data: the population risk of a two-layer network on Gaussian inputs, and its gradient flow.

For :math:`x \sim N(0, I_d)` and a teacher of the same form,
:math:`f^*(x) = \sum_k a^*_k \sigma(w^*_k\cdot x/\sqrt d + b^*_k)` (no :math:`1/k` factor, as in
:mod:`meanfield.data`), the population risk of :math:`f = c\,m^{-\alpha}\sum_j a_j\sigma(\dots)` is an exact
interacting-particle energy

.. math:: R(\theta) = \tfrac12 E_x[(f(x) - f^*(x))^2]
   = \tfrac12 E[f^{*2}] - c\,m^{-\alpha}\sum_j a_j \sum_k a^*_k K(\theta_j, \theta^*_k)
   + \tfrac12 c^2 m^{-2\alpha} \sum_{j,l} a_j a_l K(\theta_j, \theta_l),

with :math:`K(\theta, \theta') = E_x[\sigma(u)\sigma(u')]`, :math:`(u, u')` jointly Gaussian with means
:math:`(b, b')`, variances :math:`|w|^2/d, |w'|^2/d` and covariance :math:`w\cdot w'/d`. The particle
velocities follow from docs/conventions.md unchanged,
:math:`v_j = -\eta\,m^\beta c^{-2} D\nabla_{\theta_j}R - \lambda\theta_j`: an external potential from the
teacher plus a pairwise interaction, with no sampling noise.

* :func:`pair_expectations`: :math:`K` and its derivatives, closed forms (relu and erf without biases,
  identity and quadratic) or quadrature;
* :func:`population_kernel`, :func:`teacher_energy`, :func:`population_risk`, :func:`population_velocities`;
* :func:`population_flow`: the deterministic flow (any integrator but ``sgd``; ``euler_maruyama`` with a
  temperature), and :func:`online_flow`: online SGD, a fresh Gaussian batch every step (Mei, Montanari &
  Nguyen 2018), its stochastic counterpart. Both return the :class:`~meanfield.flow.Flow` of
  :func:`~meanfield.flow.particle_flow`;
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

from . import _kernels
from ._kernels import advance as _adv
from ._kernels import population as _kp
from .activations import Activation, get_activation
from .errors import ConfigError
from .validate import check_int
from .flow import Dynamics, Flow, flow_from_field
from .model import Model, check_particles, kernels_for
from .threads import threads_for

__all__ = [
    "PairExpectations", "Population", "pair_expectations", "population_kernel", "teacher_energy",
    "population_risk", "population_velocities", "population_flow", "online_flow",
    "CLOSED_FORMS", "METHODS",
]

#: Activations with a closed-form population kernel: always (identity, quadratic) or without biases.
CLOSED_FORMS = {"identity": True, "quadratic": True, "relu": False, "erf": False}
METHODS = ("auto", "closed", "quadrature")
#: Gauss-Hermite nodes per dimension for custom activations (tail nodes with weight < 1e-18 are dropped).
#: Built-in activations do not use a fixed rule by default (``quad_points=None``): see :func:`pair_expectations`.
QUAD_POINTS = 128
#: Largest number of Gauss-Hermite nodes: numpy's ``hermegauss`` overflows from 371 nodes on (every weight
#: becomes 0 or NaN), which would make every kernel exactly 0.
MAX_QUAD_POINTS = 370


class PairExpectations(NamedTuple):
    r"""Gaussian expectations of a pair of neurons, each an ndarray of the broadcast input shape.

    ``K`` :math:`=E[\sigma(u)\sigma(v)]`; ``K1`` :math:`=2\partial K/\partial q_1=E[\sigma''(u)\sigma(v)]`;
    ``K2`` :math:`=2\partial K/\partial q_2`; ``Kr`` :math:`=\partial K/\partial r=E[\sigma'(u)\sigma'(v)]`;
    ``Kb1`` :math:`=\partial K/\partial b_1=E[\sigma'(u)\sigma(v)]`; ``Kb2`` :math:`=E[\sigma(u)\sigma'(v)]`.
    """

    K: np.ndarray
    K1: np.ndarray
    K2: np.ndarray
    Kr: np.ndarray
    Kb1: np.ndarray
    Kb2: np.ndarray


class Population(NamedTuple):
    """The problem of a population flow (``Flow.problem``): Gaussian inputs, the teacher, and how kernels are
    evaluated.

    ``batch_size`` is 0 for the exact population flow and B for online SGD.
    """

    teacher: np.ndarray  # (k, d + 2), columns [a*, w*, b*]
    activation: Activation
    method: str
    quad_points: int | None
    batch_size: int = 0
    name: str = "population"

    def risks(self, theta, model) -> dict:
        r"""``population_risk`` :math:`= \frac12 E_{x\sim N(0, I_d)}[(f(x) - f^*(x))^2]` of the network
        ``theta``, exact (:func:`population_risk`): with infinite data there is no separate test risk."""
        return {"population_risk": population_risk(theta, self.teacher, model, method=self.method,
                                                   quad_points=self.quad_points)}


@functools.lru_cache(maxsize=16)
def _gauss_hermite(n: int) -> tuple:
    x, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / math.sqrt(2.0 * math.pi)
    keep = w > 1e-18
    return np.ascontiguousarray(x[keep]), np.ascontiguousarray(w[keep] / w[keep].sum())


def _nodes(quad_points):
    """Gauss-Hermite nodes and weights (normalised to sum 1) of x ~ N(0, 1), tail weights < 1e-18 dropped.

    The rule is computed once per size (``hermegauss`` solves an eigenproblem: 70 ms at 128 nodes, which the
    population-risk observer used to pay at every snapshot) and returned as fresh copies."""
    x, w = _gauss_hermite(QUAD_POINTS if quad_points is None else int(quad_points))
    return x.copy(), w.copy()


def _check_method(method, quad_points):
    if method not in METHODS:
        raise ConfigError("method", method, "one of " + ", ".join(METHODS))
    if quad_points is None:
        return
    check_int("quad_points", quad_points, low=4, high=MAX_QUAD_POINTS,
              allowed=f"None (nodes chosen from the integrand) or an integer between 4 and {MAX_QUAD_POINTS} "
                      "(Gauss-Hermite overflows beyond)")


def _method_code(act: Activation, method: str, has_bias: bool, quad_points=None) -> int:
    """CLOSED, QUAD (integrand-adapted rule) or GH (fixed Gauss-Hermite rule) for an activation, given whether
    any bias (student or teacher) is in play and the ``quad_points`` asked for."""
    closed_ok = (not act.is_custom) and act.name in CLOSED_FORMS and (CLOSED_FORMS[act.name] or not has_bias)
    if method == "closed":
        if not closed_ok:
            raise ConfigError("method", method, "'closed' only for identity and quadratic, or relu and erf "
                              "without biases (student and teacher); use 'auto' or 'quadrature'")
        return _kp.CLOSED
    if method == "auto" and closed_ok:
        return _kp.CLOSED
    if act.is_custom or quad_points is not None:
        return _kp.GH
    return _kp.QUAD


def _kernels_for_act(act: Activation):
    return _kernels.custom_kernels(act) if act.is_custom else _kernels.BUILTIN


def pair_expectations(activation, q1, q2, r, b1=0.0, b2=0.0, *, method="auto", quad_points=None):
    r"""Gaussian expectations :math:`E[\sigma(u)\sigma(v)]` of a pair of pre-activations and their derivatives.

    Parameters
    ----------
    activation : str or Activation
    q1, q2 : array_like
        Variances :math:`|w|^2/d`, :math:`|w'|^2/d` (>= 0).
    r : array_like
        Covariance :math:`w\cdot w'/d` (:math:`r^2 \le q_1q_2`).
    b1, b2 : array_like
        Means (biases) of :math:`u` and :math:`v`.
    method : {"auto", "closed", "quadrature"}
        ``auto``: the closed form where one exists (identity, quadratic; relu and erf when every bias is
        zero), quadrature otherwise.
    quad_points : int, optional
        ``None`` (default): nodes chosen from the integrand (see Notes). An integer n (4 to
        :data:`MAX_QUAD_POINTS` = 370; numpy's Gauss-Hermite weights overflow beyond) asks for the fixed
        n x n Gauss-Hermite grid, without accuracy guarantee; custom activations always use it (default 128).
        Not used by relu.

    Returns
    -------
    PairExpectations
        Arrays of the broadcast shape of the inputs.

    Accuracy
    --------
    At default settings, every built-in activation: relative error below 1e-12 (absolute 1e-14 times the
    largest of the six values where one is near zero), for variances from 0 to at least 1e4, any biases
    and correlations up to :math:`\pm1` (tests/test_population.py, against mpmath). Given ``(q1, q2, r)`` the
    result is accurate for those numbers; for relu near :math:`\rho = \pm1` the kernels' infinite slope makes
    them sensitive to the rounding of ``r`` itself: :func:`population_kernel` and the flows compute
    :math:`q_1q_2 - r^2` from the weight vectors instead.

    Notes
    -----
    Closed forms: relu, the arc-cosine kernel of degree 1,
    :math:`K = \frac{\sqrt{q_1q_2}}{2\pi}(\sin\vartheta + (\pi-\vartheta)\cos\vartheta)`,
    :math:`\cos\vartheta = r/\sqrt{q_1q_2}`, with :math:`K_r = (\pi-\vartheta)/2\pi` and
    :math:`K_1 = \sqrt{q_2/q_1}\sin\vartheta/2\pi`; erf, Williams' arcsine kernel
    :math:`K = \frac2\pi\arcsin\frac{2r}{\sqrt{(1+2q_1)(1+2q_2)}}`,
    :math:`K_r = \frac4\pi[(1+2q_1)(1+2q_2)-4r^2]^{-1/2}`, :math:`K_1 = -2rK_r/(1+2q_1)`; identity
    :math:`K = r + b_1b_2`; quadratic :math:`K = q_1q_2 + 2r^2 + b_2^2q_1 + b_1^2q_2 + 4b_1b_2r + b_1^2b_2^2`.

    Quadrature (default, built-in tanh, sigmoid, softplus, and erf with biases): :math:`u = b_1 + \sqrt{q_1}\xi_1`
    and, given :math:`\xi_1`, :math:`v = M + S\xi_2` with :math:`M = b_2 + \sqrt{q_2}\rho\xi_1`,
    :math:`S = \sqrt{q_2(1-\rho^2)}`; the inner expectations of :math:`\sigma, \sigma', \sigma''` (closed form
    for erf) and the outer integral use composite 14-point Gauss-Legendre panels graded around the points where
    :math:`\sigma` changes, on the scale :math:`\delta/s` set by the distance :math:`\delta` of
    :math:`\sigma`'s nearest complex singularity (docs/conventions.md); :math:`K_1 = E[\sigma''(u)\sigma(v)]`
    directly. A fixed Gauss-Hermite grid (``quad_points`` given, or a custom activation) writes
    :math:`v = b_2 + \sqrt{q_2}(\rho\xi_1 + \sqrt{1-\rho^2}\xi_2)` and takes :math:`K_1` from Stein's lemma,
    :math:`K_1 = (E[\sigma'(u)\sigma(v)\xi_1] - \rho\sqrt{q_2}K_r)/\sqrt{q_1}`, so only :math:`\sigma` and
    :math:`\sigma'` are needed; its error grows with the variances (tanh: ~1e-8 at 2.5, 1e-4 at 7.4 with
    128 nodes). Gauss-Hermite converges only algebraically across relu's kink, so relu
    instead integrates over the half-line :math:`u > 0` with 24-point Gauss-Legendre panels (split at the
    kink of the inner integrand), the inner expectation over :math:`v` given :math:`u` in closed form, and
    :math:`K_1 = p_u(0)E[\mathrm{relu}(v)\mid u = 0]` exactly (:math:`\sigma'' = \delta`).
    """
    q1, q2, r = (np.asarray(v, dtype=np.float64) for v in (q1, q2, r))
    return _pair_table(activation, q1, q2, r, q1 * q2 - r * r, b1, b2, method, quad_points)


def _pair_table(activation, q1, q2, r, det, b1, b2, method, quad_points):
    """pair_expectations with the determinant det = q1 q2 - r^2 given (computed from weight vectors)."""
    act = get_activation(activation)
    _check_method(method, quad_points)
    arrs = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (q1, q2, r, det, b1, b2)))
    shape = arrs[0].shape
    flat = [np.ascontiguousarray(a.reshape(-1)) for a in arrs]
    if not all(np.all(np.isfinite(f)) for f in flat):
        raise ConfigError("q1, q2, r, b1, b2", "non-finite entries", "finite variances, covariances and means")
    if np.any(flat[0] < 0) or np.any(flat[1] < 0):
        raise ConfigError("q1, q2", "negative variance", "variances >= 0")
    if np.any(flat[2] * flat[2] > flat[0] * flat[1] * (1 + 1e-12)):
        raise ConfigError("r", "covariance with r^2 > q1 q2", "a covariance with r^2 <= q1 q2")
    np.maximum(flat[3], 0.0, out=flat[3])
    has_bias = bool(np.any(flat[4] != 0) or np.any(flat[5] != 0))
    code = _method_code(act, method, has_bias, quad_points)
    nodes, weights = _nodes(quad_points)
    out = np.empty((flat[0].shape[0], 6))
    _kernels_for_act(act).pop_pair_table(act.code, code, *flat, nodes, weights, out)
    return PairExpectations(*(out[:, c].reshape(shape) for c in range(6)))


def pair_determinant(W1, W2):
    r""":math:`q_1q_2 - r^2` for all pairs of rows of ``W1`` (m1, d) and ``W2`` (m2, d), accurate near parallel.

    :math:`q = |w|^2/d`, :math:`r = w\cdot w'/d`. Where :math:`1 - \rho^2` is below
    ``_kernels.population.DET_RECOMPUTE`` the product difference is replaced by Kahan's
    :math:`q_1q_2\,|a-b|^2|a+b|^2/4` for the unit vectors :math:`a, b` (no cancellation), so that the angle
    between near-parallel (or antiparallel) weights is accurate to rounding, not to its square root.
    """
    d = W1.shape[1]
    q1 = (W1 * W1).sum(1)[:, None] / d
    q2 = (W2 * W2).sum(1)[None, :] / d
    r = W1 @ W2.T / d
    det = q1 * q2 - r * r
    bad = np.argwhere(det <= _kp.DET_RECOMPUTE * q1 * q2)
    if bad.size:
        n1 = np.sqrt((W1 * W1).sum(1))
        n2 = np.sqrt((W2 * W2).sum(1))
        for i, j in bad:
            if n1[i] == 0 or n2[j] == 0:
                det[i, j] = 0.0
                continue
            a, b = W1[i] / n1[i], W2[j] / n2[j]
            det[i, j] = q1[i, 0] * q2[0, j] * float((a - b) @ (a - b)) * float((a + b) @ (a + b)) * 0.25
    return q1, q2, r, det


def _teacher(teacher, d, key="teacher"):
    T = np.asarray(teacher, dtype=np.float64)
    if T.ndim != 2 or T.shape[0] < 1 or T.shape[1] not in (d + 1, d + 2):
        raise ConfigError(key, f"array of shape {T.shape}", f"shape (k, {d + 1}) or (k, {d + 2}) with k >= 1 "
                          "(columns [a*, w*_1..w*_d(, b*)])")
    if not np.all(np.isfinite(T)):
        raise ConfigError(key, "array with NaN or Inf", "finite values")
    if T.shape[1] == d + 1:
        T = np.hstack([T, np.zeros((T.shape[0], 1))])
    return np.ascontiguousarray(T)


def _split(theta, d, bias):
    theta = np.asarray(theta, dtype=np.float64)
    W = theta[:, 1 : 1 + d]
    b = theta[:, 1 + d] if bias else np.zeros(theta.shape[0])
    return theta[:, 0], W, b


def population_kernel(theta1, theta2, d, activation="relu", *, method="auto", quad_points=None):
    r"""The matrix :math:`K(\theta_i, \theta'_j) = E_x[\sigma(w_i\cdot x/\sqrt d + b_i)\sigma(w'_j\cdot x/\sqrt d + b'_j)]`.

    Parameters
    ----------
    theta1 : ndarray, shape (m1, d + 1) or (m1, d + 2)
        Particles or teacher rows ``[a, w, (b)]`` (``a`` is ignored).
    theta2 : ndarray, shape (m2, d + 1) or (m2, d + 2)
    d : int
    activation : str or Activation
    method, quad_points
        As in :func:`pair_expectations`.

    Returns
    -------
    ndarray, shape (m1, m2)
        Builds (m1, m2) arrays: for small sets (tests, teachers), not for the flow.

    Accuracy
    --------
    As :func:`pair_expectations` (relative 1e-12 at defaults), near-parallel and antiparallel weights
    included: :math:`q_1q_2 - r^2` comes from the weight vectors (:func:`pair_determinant`).
    """
    T1 = _teacher(theta1, d, "theta1")
    T2 = _teacher(theta2, d, "theta2")
    q1, q2, r, det = pair_determinant(T1[:, 1 : 1 + d], T2[:, 1 : 1 + d])
    return _pair_table(activation, q1, q2, r, det, T1[:, -1][:, None], T2[:, -1][None, :], method,
                       quad_points).K


def teacher_energy(teacher, d, activation="relu", *, method="auto", quad_points=None) -> float:
    r""":math:`E_x[f^*(x)^2] = \sum_{k,l} a^*_k a^*_l K(\theta^*_k, \theta^*_l)` for :math:`x \sim N(0, I_d)`.

    Accuracy: relative 1e-12 at default settings (each K as in :func:`pair_expectations`).
    """
    act = get_activation(activation)
    _check_method(method, quad_points)
    T = _teacher(teacher, d)
    code = _method_code(act, method, bool(np.any(T[:, -1] != 0)), quad_points)
    nodes, weights = _nodes(quad_points)
    return float(_kernels_for_act(act).pop_teacher_energy(T, d, act.code, code, nodes, weights))


def _population_field(teacher, model: Model, dynamics: Dynamics, method, quad_points):
    _check_method(method, quad_points)
    if model.act.is_custom is False and model.act.name not in CLOSED_FORMS and method == "closed":
        raise ConfigError("method", method, "'closed' only for " + ", ".join(CLOSED_FORMS))
    T = _teacher(teacher, model.d)
    code = _method_code(model.act, method, model.bias or bool(np.any(T[:, -1] != 0)), quad_points)
    nodes, weights = _nodes(quad_points)
    eta_a, eta_w, eta_b = dynamics.layer_lr
    D = np.full(model.p, eta_w)
    D[0] = eta_a
    if model.bias:
        D[-1] = eta_b
    coef = dynamics.lr * model.scale.velocity_scale(model.m)
    dt = model.np_dtype
    field = _adv.Field(
        _adv.POPULATION, model.act.code, model.bias, np.zeros((0, model.d), dt), np.zeros(0, dt), D,
        model.output_scale, coef, dynamics.weight_decay, T, code, nodes, weights,
    )
    return field, T


def _velocities_and_rows(theta, field, model):
    m = theta.shape[0]
    out = np.empty_like(theta)
    rows = np.empty((m, 2))
    with threads_for((m + field.teacher.shape[0]) * m * model.p, population=True):
        kernels_for(model).population_velocities(
            theta, field.teacher, model.d, field.bias, field.act, field.method, field.nodes, field.weights,
            field.out_scale, field.coef, field.D, field.lam, out, rows)
    return out, rows


def population_velocities(theta, teacher, model: Model, dynamics: Dynamics | None = None, *, method="auto",
                          quad_points=None) -> np.ndarray:
    r"""Particle velocities of gradient flow on the population risk (noise excluded).

    Parameters
    ----------
    theta : ndarray, shape (m, p)
    teacher : ndarray, shape (k, d + 1) or (k, d + 2)
        Teacher rows :math:`(a^*_k, w^*_k[, b^*_k])`.
    model : Model
    dynamics : Dynamics, optional
        Supplies :math:`\eta`, :math:`D` and :math:`\lambda` (defaults: 1, identity, 0).
    method, quad_points
        As in :func:`pair_expectations`.

    Returns
    -------
    ndarray, shape (m, p)
        :math:`v_j = -\eta\,m^{\beta-\alpha}c^{-1}D\,E_x[(f(x)-f^*(x))\nabla_\theta\varphi(\theta_j;x)]
        - \lambda\theta_j`.

    Notes
    -----
    :math:`E_x[(f - f^*)\nabla_\theta\varphi(\theta_j; x)] = c\,m^{-\alpha}\sum_l a_l G(\theta_j,\theta_l)
    - \sum_k a^*_k G(\theta_j, \theta^*_k)` with
    :math:`G(\theta, \theta') = \nabla_\theta[a K(\theta, \theta')] = (K,\ a(K_1 w + K_r w')/d,\ a K_{b_1})`.
    Every pair of particles is evaluated once for both (O(m^2 p) work, O(m p) memory), bitwise independent
    of the number of threads.

    Accuracy: norm-wise relative error below 1e-12 at default settings (tests/test_population.py against
    mpmath, finite differences of :func:`population_risk`); near-parallel and antiparallel particles
    included (the determinant is recomputed from the rows when :math:`1 - \rho^2 < 10^{-4}`).
    """
    dynamics = Dynamics() if dynamics is None else dynamics
    theta = check_particles(theta, model)
    field, _ = _population_field(teacher, model, dynamics, method, quad_points)
    return _velocities_and_rows(theta, field, model)[0]


def population_risk(theta, teacher, model: Model, *, method="auto", quad_points=None) -> float:
    r"""Exact population risk :math:`R = \frac12 E_{x\sim N(0, I_d)}[(f(x) - f^*(x))^2]`.

    Parameters
    ----------
    theta : ndarray, shape (m, p)
    teacher : ndarray, shape (k, d + 1) or (k, d + 2)
    model : Model
    method, quad_points
        As in :func:`pair_expectations`.

    Returns
    -------
    float
        The energy of the module docstring, summed in a fixed order: relative error 1e-12 at default
        settings (the kernels), plus the rounding of the sums, of order :math:`10^{-16}\,E[f^{*2}]` absolute.
    """
    theta = check_particles(theta, model)
    field, T = _population_field(teacher, model, Dynamics(), method, quad_points)
    return _risk(theta, field, model)


def _risk(theta, field, model):
    _, rows = _velocities_and_rows(theta, field, model)
    k = kernels_for(model)
    energy = k.pop_teacher_energy(field.teacher, model.d, field.act, field.method, field.nodes, field.weights)
    return float(k.pop_risk_from_rows(theta, rows, field.out_scale, energy))


def population_flow(teacher, model: Model, dynamics: Dynamics, *, method="auto",
                    quad_points=None) -> Flow:
    """Gradient flow of the exact population risk on Gaussian inputs (the mean-field PDE, no sampling noise).

    Parameters
    ----------
    teacher : ndarray, shape (k, d + 1) or (k, d + 2)
        Teacher rows :math:`(a^*_k, w^*_k[, b^*_k])`, same activation as the model.
    model : Model
        Any scaling preset; the student's bias flag is independent of the teacher's.
    dynamics : Dynamics
        Integrators ``euler``, ``heun``, ``rk4``, ``euler_maruyama`` (required with ``temperature > 0``);
        ``sgd`` has no meaning without data (use :func:`online_flow`). Weight decay and ``layer_lr`` apply.
    method, quad_points
        As in :func:`pair_expectations`.

    Returns
    -------
    Flow
        ``Flow(init, advance, model, dynamics, problem)`` with ``problem`` a :class:`Population`, whose
        ``risks`` the run's observers record.
    """
    if not isinstance(dynamics, Dynamics):
        raise ConfigError("dynamics", type(dynamics).__name__, "a meanfield.flow.Dynamics")
    if dynamics.integrator == "sgd":
        raise ConfigError("dynamics.integrator", "sgd", "euler, heun, rk4 or euler_maruyama for the population "
                          "flow (online SGD is meanfield.population.online_flow)")
    field, T = _population_field(teacher, model, dynamics, method, quad_points)
    data = Population(T, model.act, method, None if quad_points is None else int(quad_points), 0, "population")
    return flow_from_field(field, model, dynamics, data)


def online_flow(teacher, model: Model, dynamics: Dynamics, *, method="auto", quad_points=None) -> Flow:
    r"""Online SGD: each step draws a fresh batch of ``dynamics.batch_size`` Gaussian inputs.

    The stochastic counterpart of :func:`population_flow` (Mei, Montanari & Nguyen 2018): step s takes an
    Euler step on the empirical risk of B fresh points :math:`x \sim N(0, I_d)` labelled by the teacher,
    :math:`\theta \leftarrow \theta + dt\,\hat v_s(\theta)` (plus :math:`\sqrt{2\tau\,dt}\,\xi_s` when
    ``temperature > 0``), with :math:`E[\hat v_s]` = the population velocity. The inputs of step s are pure
    functions of (dynamics.seed, s, index) (counter-based stream 2), so runs are reproducible at any thread
    count and resumable from (seed, step).

    Parameters
    ----------
    teacher : ndarray, shape (k, d + 1) or (k, d + 2)
    model : Model
    dynamics : Dynamics
        ``integrator="sgd"`` with ``batch_size`` B.
    method, quad_points
        Used only by the observers (exact population risk of the current particles).

    Returns
    -------
    Flow
        With ``problem`` a :class:`Population` whose ``batch_size`` is B.
    """
    if not isinstance(dynamics, Dynamics):
        raise ConfigError("dynamics", type(dynamics).__name__, "a meanfield.flow.Dynamics")
    if dynamics.integrator != "sgd":
        raise ConfigError("dynamics.integrator", dynamics.integrator,
                          "'sgd' with batch_size = fresh samples per step for online SGD")
    pfield, T = _population_field(teacher, model, dynamics, method, quad_points)
    B = int(dynamics.batch_size)
    dt = model.np_dtype
    field = pfield._replace(kind=_adv.ONLINE, X=np.zeros((B, model.d), dt), y=np.zeros(B, dt))
    data = Population(T, model.act, method, None if quad_points is None else int(quad_points), B, "online")
    return flow_from_field(field, model, dynamics, data)
