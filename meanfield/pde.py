r"""The mean-field PDE on a grid: a deterministic ground truth for the particle engine in low dimension.

Gradient flow of the particles :math:`\theta_j` is the particle discretisation of the Wasserstein gradient flow

.. math:: \partial_t\mu = \nabla_\theta\cdot\big(\mu\,(\eta D\nabla_\theta V(\theta;\mu) + \lambda\theta)\big)
   + \tau\Delta_\theta\mu, \qquad V(\theta;\mu) = E_x[(f_\mu(x) - y(x))\,\varphi(\theta; x)]

(mean-field preset; docs/conventions.md, "The mean-field PDE on a grid"). This module solves it by finite
volumes where the measure lives in one or two dimensions:

* **plane** (:func:`plane_problem`): :math:`\theta = (a, w)`, d = 1 input, no bias, on a finite training set
  or on the Gaussian population risk of a teacher; :math:`\mu_t` is a density on an (a, w) grid;
* **radial** (:func:`radial_problem`): a rotation-invariant problem (Gaussian inputs in d >= 2, a target made
  of teacher *rings*), the output weight fixed to :math:`a_0` (Mei, Montanari & Nguyen's isotropic example):
  :math:`\mu_t` is described by the law of :math:`s = |w|/\sqrt d`, a density on :math:`[0, s_{\max}]`.

A flow has the face of every other dynamics::

    flow = pde_flow(problem, grid, PDEParams(temperature=0.0))
    state = flow.init(Model(d=1, m=1))      # the initial law of init_particles: a ~ N(0, sa^2), w ~ N(0, sw^2)
    state = flow.advance(state, 100)          # 100 CFL-limited steps, in one compiled call
    state = flow.advance_to(state, 5.0)       # up to t = 5 exactly
    flow.observe(state)                       # {"risk": ..., "mass": ..., "outflow": ..., moments ...}

States are immutable :class:`DensityState` tuples; ``state.outflow`` is the mass that is not on the grid (the
initial law's tails outside it plus everything that left through the boundary), so
``mass + outflow = 1`` to rounding at every step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np
from scipy import special

from ._kernels import pde as _k
from .activations import get_activation
from .validate import check_int, check_number
from .errors import ConfigError

__all__ = [
    "PDEParams", "PlaneProblem", "RadialProblem", "Grid", "DensityState", "PDEFlow", "OutflowError",
    "plane_problem", "radial_problem", "make_grid", "pde_flow", "as_measure", "w2_to_particles",
    "marginal_w2", "particle_risk", "particle_velocities", "field_velocities", "face_velocities", "pde_observers",
    "TOLERANCE",
]

#: Default bound on the mass allowed off the grid (initial tails plus outflow).
TOLERANCE = 1e-6
#: Cells (plane) or cells x radial nodes (radial) from which the parallel kernels are used (measured in
#: benchmarks/bench_pde.py: on the shared 2-core machine, under load 4-5, the parallel kernels were 2-4x slower
#: than the serial ones at 128^2, 256^2 and 4096 x 64; results are bitwise identical either way).
PARALLEL_MIN_WORK = 1 << 20


class OutflowError(ConfigError):
    """More mass than ``tolerance`` left the grid: the extent is too small. ``state`` is the state reached."""

    def __init__(self, key, value, allowed, state=None):
        super().__init__(key, value, allowed)
        self.state = state


# --------------------------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PDEParams:
    r"""How the density moves and how the scheme steps.

    Parameters
    ----------
    lr : float
        :math:`\eta \ge 0` (0 switches the potential off: pure diffusion / weight decay).
    layer_lr : (float, float)
        :math:`(\eta_a, \eta_w) > 0`, the diagonal of D (the radial setting uses :math:`\eta_w` only).
    weight_decay : float
        :math:`\lambda \ge 0`: the drift :math:`-\lambda\theta`.
    temperature : float
        :math:`\tau \ge 0`: the diffusion :math:`\tau\Delta_\theta\mu`.
    order : {1, 2}
        1: upwind fluxes and forward Euler; 2: MUSCL fluxes with the van Leer limiter and the SSP-RK2 (Heun)
        step.
    cfl : float
        In (0, 1]: the step is ``cfl / S`` with S the positivity rate of the module docstring of
        ``meanfield._kernels.pde``; 1 is the largest step that keeps every density non-negative.
    dt_max : float, optional
        A cap on the step (for accuracy in time; positivity never needs it).
    """

    lr: float = 1.0
    layer_lr: tuple = (1.0, 1.0)
    weight_decay: float = 0.0
    temperature: float = 0.0
    order: int = 2
    cfl: float = 0.9
    dt_max: float | None = None

    def __post_init__(self):
        check_number("pde.lr", self.lr, low=0, allowed="a finite number >= 0")
        check_number("pde.weight_decay", self.weight_decay, low=0, allowed="a finite number >= 0")
        check_number("pde.temperature", self.temperature, low=0, allowed="a finite number >= 0")
        lrs = tuple(self.layer_lr) if isinstance(self.layer_lr, (tuple, list, np.ndarray)) else ()
        if len(lrs) not in (2, 3):
            raise ConfigError("pde.layer_lr", self.layer_lr, "two numbers (eta_a, eta_w) > 0")
        for v in lrs:
            check_number("pde.layer_lr", v, low=0, low_open=True, allowed="finite numbers (eta_a, eta_w) > 0")
        object.__setattr__(self, "layer_lr", (float(lrs[0]), float(lrs[1])))
        check_int("pde.order", self.order, low=1, high=2, allowed="1 (upwind) or 2 (MUSCL + Heun)")
        check_number("pde.cfl", self.cfl, low=0, low_open=True, high=1, allowed="a number in (0, 1]")
        if self.dt_max is not None:
            check_number("pde.dt_max", self.dt_max, low=0, low_open=True, allowed="a finite number > 0")

    @classmethod
    def from_dynamics(cls, dynamics, **scheme) -> "PDEParams":
        """The same (lr, layer_lr, weight_decay, temperature) as a particle :class:`~meanfield.flow.Dynamics`."""
        return cls(lr=dynamics.lr, layer_lr=dynamics.layer_lr[:2], weight_decay=dynamics.weight_decay,
                   temperature=dynamics.temperature, **scheme)

    def describe(self) -> dict:
        return {"lr": self.lr, "layer_lr": list(self.layer_lr), "weight_decay": self.weight_decay,
                "temperature": self.temperature, "order": self.order, "cfl": self.cfl, "dt_max": self.dt_max}


# --------------------------------------------------------------------------------------------------------
# problems
# --------------------------------------------------------------------------------------------------------


class PlaneProblem(NamedTuple):
    r"""The plane setting: :math:`\theta = (a, w)`, one input, no bias.

    The risk is :math:`R = \frac12\sum_k q_k (f(x_k) - y_k)^2` over input nodes: the n training points with
    :math:`q_k = 1/n`, or a quadrature rule of :math:`x \sim N(0, 1)` with :math:`y_k = f^*(x_k)`.
    """

    kind: str  # "finite" or "population"
    activation: str
    x: np.ndarray  # (N,)
    q: np.ndarray  # (N,)
    y: np.ndarray  # (N,)
    teacher: np.ndarray | None  # (k, 2) rows (a*, w*) or None
    quad_points: int

    @property
    def p(self) -> int:
        return 2


class RadialProblem(NamedTuple):
    r"""The radial setting: Gaussian inputs in d >= 2, fixed output weight :math:`a_0`, teacher rings.

    The target is :math:`f^*(x) = \sum_i a^*_i\,E_u[\sigma(s^*_i\, u\cdot x)]` (u uniform on the unit sphere):
    teacher neurons of radius :math:`s^*_i = |w^*|/\sqrt d` spread uniformly over all directions.
    """

    d: int
    activation: str
    teacher: np.ndarray  # (k, 2) rows (a*_i, s*_i)
    a0: float
    R: np.ndarray  # (N,) radial nodes of the chi_d law
    q: np.ndarray  # (N,) their weights
    u: np.ndarray  # (L,) nodes of t^2, t the cosine to a fixed direction
    wu: np.ndarray  # (L,) their weights
    f_star: np.ndarray  # (N,) target at the radial nodes

    @property
    def p(self) -> int:
        return 1


def _check_activation(activation):
    act = get_activation(activation)
    if act.is_custom:
        raise ConfigError("activation", act.name, "a built-in activation for the PDE solver")
    return act


def _half_line_rule(n):
    """Gauss rule for x ~ N(0, 1) exact for polynomials of degree < 2n on each half-line x > 0, x < 0."""
    u, W = special.roots_genlaguerre(n, -0.5)
    x = np.sqrt(2.0 * u)
    q = W / (2.0 * W.sum())
    return np.r_[-x[::-1], x], np.r_[q[::-1], q]


def _gauss_rule(n):
    x, w = np.polynomial.hermite_e.hermegauss(int(n))
    keep = w > 1e-18 * w.max()
    return np.ascontiguousarray(x[keep]), np.ascontiguousarray(w[keep] / w[keep].sum())


def plane_problem(data=None, *, teacher=None, activation="erf", quad_points=300) -> PlaneProblem:
    r"""The plane (a, w) setting on a finite training set or on the Gaussian population.

    Parameters
    ----------
    data : Dataset or (X, y), optional
        Training set with d = 1 (X of shape (n, 1) or (n,)). Without it, the population risk of ``teacher``.
    teacher : ndarray, shape (k, 2), optional
        Teacher rows :math:`(a^*_k, w^*_k)` (no bias). Required without data; with data it is used only by
        the ``mass_near_teacher`` observer.
    activation : str
        A built-in activation.
    quad_points : int
        Nodes of the rule for :math:`x\sim N(0,1)` (population only): Gauss–Hermite for smooth activations;
        for relu a Gauss rule on each half-line (exact: the integrands are piecewise quadratic in x).

    Returns
    -------
    PlaneProblem
    """
    act = _check_activation(activation)
    T = None
    if teacher is not None:
        T = np.asarray(teacher, dtype=np.float64)
        if T.ndim != 2 or T.shape[1] != 2 or T.shape[0] < 1 or not np.all(np.isfinite(T)):
            raise ConfigError("teacher", f"array of shape {T.shape}", "finite rows (a*, w*) of shape (k, 2), k >= 1")
    if data is None:
        if T is None:
            raise ConfigError("teacher", None, "a teacher (k, 2) for the population setting, or data")
        qp = check_int("quad_points", quad_points, low=4, high=300, allowed="an integer between 4 and 300")
        x, q = _half_line_rule(qp // 2) if act.name == "relu" else _gauss_rule(qp)
        from .data import teacher_outputs

        y = teacher_outputs(T, x[:, None], act.name)
        return PlaneProblem("population", act.name, x, q, np.ascontiguousarray(y), T, qp)
    from .data import as_dataset

    if isinstance(data, tuple) and len(data) == 2 and np.ndim(data[0]) == 1:  # inputs x_i given as a vector
        data = (np.asarray(data[0])[:, None], data[1])
    ds = as_dataset(data)
    X, y = np.asarray(ds.X, dtype=np.float64), ds.y
    if X.ndim == 2 and X.shape[1] == 1:
        X = X[:, 0]
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if X.ndim != 1 or X.shape[0] < 1 or y.shape != X.shape:
        raise ConfigError("data", f"X of shape {np.shape(X)}, y of shape {y.shape}", "d = 1 inputs and n targets")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise ConfigError("data", "NaN or Inf", "finite inputs and targets")
    n = X.shape[0]
    return PlaneProblem("finite", act.name, np.ascontiguousarray(X), np.full(n, 1.0 / n), np.ascontiguousarray(y),
                        T, 0)


def _radial_rules(d, radial_points, angular_points):
    uR, WR = special.roots_genlaguerre(radial_points, d / 2.0 - 1.0)
    R = np.sqrt(2.0 * uR)
    q = WR / WR.sum()
    keep = q > 1e-20
    xi, Wt = special.roots_jacobi(angular_points, (d - 3) / 2.0, -0.5)
    return (np.ascontiguousarray(R[keep]), np.ascontiguousarray(q[keep] / q[keep].sum()),
            np.ascontiguousarray(0.5 * (1.0 + xi)), np.ascontiguousarray(Wt / Wt.sum()))


def radial_phi(problem: RadialProblem, z):
    r""":math:`\Phi(z) = E_t[\sigma(zt)]` and :math:`\Phi'(z)` for t the cosine between a uniform direction of
    :math:`R^d` and a fixed one (so that a neuron of radius s at an input of norm R contributes
    :math:`\Phi(sR)` on average over its direction)."""
    z = np.ascontiguousarray(np.asarray(z, dtype=np.float64).reshape(-1))
    out, dout = np.empty_like(z), np.empty_like(z)
    _k.radial_phi(get_activation(problem.activation).code, z, problem.u, problem.wu, out, dout)
    return out, dout


def radial_problem(d, teacher, *, activation="softplus", a0=1.0, radial_points=64,
                   angular_points=48) -> RadialProblem:
    r"""The radial setting: inputs :math:`x\sim N(0, I_d)`, fixed output weight, target made of teacher rings.

    Parameters
    ----------
    d : int
        Input dimension, >= 2.
    teacher : ndarray, shape (k, 2)
        Rows :math:`(a^*_i, s^*_i)`: ring weights and radii :math:`s^* = |w^*|/\sqrt d > 0`.
    activation : str
        A built-in activation with a non-trivial even part (an odd activation such as erf or tanh averages to
        zero over directions: every rotation-invariant network is then the constant 0).
    a0 : float
        The fixed output weight of every student neuron (not trained).
    radial_points, angular_points : int
        Gauss rules for :math:`R = |x|` (generalised Laguerre in :math:`R^2/2`) and for :math:`t^2` (Jacobi).

    Returns
    -------
    RadialProblem
    """
    d = check_int("d", d, low=2, allowed="an integer >= 2 (the radial reduction needs directions)")
    act = _check_activation(activation)
    if act.name in ("erf", "tanh", "identity"):
        raise ConfigError("activation", act.name, "an activation with a non-zero even part (relu, softplus, "
                          "quadratic, sigmoid is constant): odd ones average to 0 over directions")
    T = np.asarray(teacher, dtype=np.float64)
    if T.ndim != 2 or T.shape[1] != 2 or T.shape[0] < 1 or not np.all(np.isfinite(T)) or np.any(T[:, 1] <= 0):
        raise ConfigError("teacher", f"array of shape {T.shape}", "rows (a*, s*) with s* > 0, shape (k, 2)")
    a0 = check_number("a0", a0, allowed="a finite non-zero number")
    if a0 == 0:
        raise ConfigError("a0", a0, "a finite non-zero number")
    radial_points = check_int("radial_points", radial_points, low=8, high=400, allowed="an integer in [8, 400]")
    angular_points = check_int("angular_points", angular_points, low=4, high=400, allowed="an integer in [4, 400]")
    R, q, u, wu = _radial_rules(d, radial_points, angular_points)
    base = RadialProblem(d, act.name, T, a0, R, q, u, wu, np.zeros(R.shape[0]))
    phi, _ = radial_phi(base, np.outer(R, T[:, 1]))
    f_star = phi.reshape(R.shape[0], T.shape[0]) @ T[:, 0]
    return base._replace(f_star=np.ascontiguousarray(f_star))


# --------------------------------------------------------------------------------------------------------
# the grid
# --------------------------------------------------------------------------------------------------------


class Grid(NamedTuple):
    """A uniform grid: ``lower`` and ``upper`` corners (p,), ``cells`` per dimension (p,)."""

    lower: tuple
    upper: tuple
    cells: tuple

    @property
    def h(self) -> np.ndarray:
        return (np.asarray(self.upper) - np.asarray(self.lower)) / np.asarray(self.cells)

    def faces(self, dim: int) -> np.ndarray:
        return np.linspace(self.lower[dim], self.upper[dim], self.cells[dim] + 1)

    def centres(self, dim: int) -> np.ndarray:
        f = self.faces(dim)
        return 0.5 * (f[1:] + f[:-1])

    @property
    def cell_volume(self) -> float:
        return float(np.prod(self.h))


def _initial_sigmas(initial, problem):
    """(sigma_a, sigma_w) of the initial law from a Model (or defaults)."""
    if initial is None:
        return 1.0, 1.0
    from .model import Model

    if isinstance(initial, Model):
        if initial.bias:
            raise ConfigError("model.bias", True, "no bias for the PDE settings")
        if isinstance(problem, PlaneProblem) and initial.d != 1:
            raise ConfigError("model.d", initial.d, "d = 1 for the plane setting")
        if isinstance(problem, RadialProblem) and initial.d != problem.d:
            raise ConfigError("model.d", initial.d, f"d = {problem.d}, the problem's input dimension")
        sa, sw = float(initial.sigma_a), float(initial.sigma_w)
        if sw <= 0 or (isinstance(problem, PlaneProblem) and sa <= 0):
            raise ConfigError("model.sigma_a, sigma_w", (sa, sw), "positive standard deviations (a density)")
        return sa, sw
    raise ConfigError("initial", type(initial).__name__, "a meanfield.model.Model (its initial law) or None")


def _radial_cdf(s, d, sw):
    """P(|w|/sqrt d <= s) for w ~ N(0, sw^2 I_d)."""
    return special.gammainc(d / 2.0, d * np.square(s) / (2.0 * sw * sw))


def make_grid(problem, cells, *, initial=None, tolerance=TOLERANCE, margin=1.5, extent=None) -> Grid:
    r"""A grid whose extent holds the initial law up to ``tolerance`` and leaves room for the flow.

    Parameters
    ----------
    problem : PlaneProblem or RadialProblem
    cells : int or (int, int)
        Cells per dimension (plane: both dimensions; an int means square).
    initial : Model, optional
        The initial law (``sigma_a``, ``sigma_w``); default standard normals.
    tolerance : float
        Mass allowed off the grid, initial tails plus outflow.
    margin : float
        Factor >= 1 on the extent (room for the flow to spread).
    extent : float or (float, float), optional
        Half-widths :math:`(E_a, E_w)` (plane, grid :math:`[-E_a, E_a]\times[-E_w, E_w]`) or :math:`s_{\max}`
        (radial), overriding the rule.

    Returns
    -------
    Grid

    Notes
    -----
    The rule: each coordinate's initial tail beyond the box holds at most tolerance/8 (plane: Gaussian
    quantile :math:`E = \sigma\,\Phi^{-1}(1 - \mathrm{tol}/16)`; radial: the chi quantile of
    :math:`s = |w|/\sqrt d`), so the initial truncation is below tolerance/4; the box is widened to contain
    every teacher point (plane) or radius (radial) with 25 % to spare, and multiplied by ``margin``.
    The flow reports the mass off the grid in ``state.outflow`` and raises :class:`OutflowError` when it
    exceeds ``tolerance``.
    """
    tol = check_number("pde.tolerance", tolerance, low=0, low_open=True, high=0.1, allowed="a number in (0, 0.1]")
    margin = check_number("pde.margin", margin, low=1, allowed="a finite number >= 1")
    sa, sw = _initial_sigmas(initial, problem)
    if isinstance(problem, PlaneProblem):
        c = (cells, cells) if isinstance(cells, (int, np.integer)) and not isinstance(cells, bool) else tuple(cells)
        if len(c) != 2:
            raise ConfigError("pde.cells", cells, "an integer >= 8 or two of them (na, nw)")
        c = tuple(check_int("pde.cells", v, low=8, allowed="integers >= 8") for v in c)
        if extent is None:
            z = special.ndtri(1.0 - tol / 16.0)
            Ea, Ew = sa * z, sw * z
            if problem.teacher is not None:
                Ea = max(Ea, 1.25 * np.abs(problem.teacher[:, 0]).max())
                Ew = max(Ew, 1.25 * np.abs(problem.teacher[:, 1]).max())
            Ea, Ew = margin * Ea, margin * Ew
        else:
            e = (extent, extent) if np.ndim(extent) == 0 else tuple(extent)
            if len(e) != 2:
                raise ConfigError("pde.extent", extent, "a half-width > 0 or two (E_a, E_w)")
            Ea, Ew = (check_number("pde.extent", v, low=0, low_open=True, allowed="half-widths > 0") for v in e)
        return Grid((-float(Ea), -float(Ew)), (float(Ea), float(Ew)), c)
    if isinstance(problem, RadialProblem):
        n = check_int("pde.cells", cells, low=8, allowed="an integer >= 8")
        if extent is None:
            d = problem.d
            smax = sw * math.sqrt(2.0 * special.gammainccinv(d / 2.0, tol / 8.0) / d)
            smax = margin * max(smax, 1.25 * problem.teacher[:, 1].max())
        else:
            smax = check_number("pde.extent", extent, low=0, low_open=True, allowed="s_max > 0")
        return Grid((0.0,), (float(smax),), (n,))
    raise ConfigError("problem", type(problem).__name__, "a PlaneProblem or a RadialProblem")


# --------------------------------------------------------------------------------------------------------
# the flow
# --------------------------------------------------------------------------------------------------------


class DensityState(NamedTuple):
    """State of the PDE: step counter, time, cell-average density (grid shape) and the mass off the grid."""

    step: int
    t: float
    density: np.ndarray
    outflow: float


class PDEFlow(NamedTuple):
    """``init(initial) -> DensityState``, ``advance(state, n_steps)``, ``advance_to(state, t)``,
    ``observe(state) -> dict``; the problem, grid and parameters are kept for observers and recorders."""

    init: Callable
    advance: Callable
    advance_to: Callable
    observe: Callable
    problem: object
    grid: Grid
    params: PDEParams
    tolerance: float


def _plane_pack(problem: PlaneProblem, grid: Grid, params: PDEParams) -> _k.Plane:
    act = get_activation(problem.activation)
    h = grid.h
    return _k.Plane(grid.centres(0), grid.faces(0), grid.centres(1), grid.faces(1), float(h[0]), float(h[1]),
                    problem.x, problem.q, problem.y, act.code, params.lr * params.layer_lr[0],
                    params.lr * params.layer_lr[1], params.weight_decay, params.temperature)


_RADIAL_TABLES = {}


def _radial_pack(problem: RadialProblem, grid: Grid, params: PDEParams) -> _k.Radial:
    act = get_activation(problem.activation)
    s_c, s_f = grid.centres(0), grid.faces(0)
    key = (problem.d, act.code, grid, problem.R.tobytes(), problem.u.tobytes())
    if key not in _RADIAL_TABLES:
        N = problem.R.shape[0]
        phi_t = np.empty((N, s_c.shape[0]))
        dphi_f = np.empty((s_f.shape[0], N))
        _k.radial_tables(act.code, s_c, s_f, problem.R, problem.u, problem.wu, phi_t, dphi_f)
        _RADIAL_TABLES.clear()  # keep one grid's tables (a few MB)
        _RADIAL_TABLES[key] = (phi_t, dphi_f)
    phi_t, dphi_f = _RADIAL_TABLES[key]
    d = problem.d
    tau = params.temperature
    return _k.Radial(s_c, s_f, float(grid.h[0]), problem.q, phi_t, dphi_f, problem.f_star, float(problem.a0),
                     params.lr * params.layer_lr[1] * problem.a0 / d, params.weight_decay, tau * (d - 1) / d, tau / d)


def _gaussian_cells(faces, sigma):
    """N(0, sigma^2) mass of each cell, from the lower tail on the left of 0 and the upper tail on the right
    (differences of CDF values near 1 would cancel to rounding noise, even negative)."""
    lo, hi = faces[:-1] / sigma, faces[1:] / sigma
    left = special.ndtr(hi) - special.ndtr(lo)
    right = special.ndtr(-lo) - special.ndtr(-hi)
    return np.maximum(np.where(lo >= 0, right, left), 0.0)


def _chi_cells(faces, d, sw):
    """Mass of each cell [s_i, s_i+1] of s = |w|/sqrt d, w ~ N(0, sw^2 I_d), without cancellation in the tail."""
    x = d * np.square(faces) / (2.0 * sw * sw)
    lower = np.diff(special.gammainc(d / 2.0, x))
    upper = -np.diff(special.gammaincc(d / 2.0, x))
    return np.maximum(np.where(special.gammainc(d / 2.0, x[:-1]) > 0.5, upper, lower), 0.0)


def _initial_density(problem, grid, initial):
    sa, sw = _initial_sigmas(initial, problem)
    if isinstance(problem, PlaneProblem):
        mass = np.outer(_gaussian_cells(grid.faces(0), sa), _gaussian_cells(grid.faces(1), sw))
    else:
        mass = _chi_cells(grid.faces(0), problem.d, sw)
    return np.ascontiguousarray(mass / grid.cell_volume)


def pde_flow(problem, grid: Grid, params=None, *, tolerance=TOLERANCE, parallel=None) -> PDEFlow:
    r"""The finite-volume flow of the mean-field PDE of ``problem`` on ``grid``.

    Parameters
    ----------
    problem : PlaneProblem or RadialProblem
    grid : Grid
        From :func:`make_grid`.
    params : PDEParams or meanfield.flow.Dynamics, optional
        A ``Dynamics`` contributes its lr, layer_lr, weight_decay and temperature (its dt and integrator are
        not used: the step is chosen by the CFL rule).
    tolerance : float
        :class:`OutflowError` is raised by ``advance`` once more mass than this is off the grid.
    parallel : bool, optional
        Force the parallel (True) or serial (False) kernels; by default parallel from
        :data:`PARALLEL_MIN_WORK` cells (plane) or table entries (radial). Results are bitwise identical.

    Returns
    -------
    PDEFlow
        ``init(initial=None, step=0)``: the cell averages of the initial law of ``initial`` (a
        :class:`~meanfield.model.Model`: plane :math:`a\sim N(0,\sigma_a^2)`, :math:`w\sim N(0,\sigma_w^2)`
        independent; radial :math:`w\sim N(0, \sigma_w^2 I_d)`, so :math:`d s^2/\sigma_w^2\sim\chi^2_d`),
        integrated exactly over each cell; or an explicit density array of the grid's shape.
        ``advance(state, n_steps)``: ``n_steps`` CFL-limited steps. ``advance_to(state, t)``: steps up to time
        t, the last one shortened to land on t exactly. ``observe(state)``: the observables of
        :func:`pde_observers` as a dict.
    """
    from .flow import Dynamics

    if params is None:
        params = PDEParams()
    elif isinstance(params, Dynamics):
        params = PDEParams.from_dynamics(params)
    elif not isinstance(params, PDEParams):
        raise ConfigError("params", type(params).__name__, "a PDEParams or a meanfield.flow.Dynamics")
    tol = check_number("pde.tolerance", tolerance, low=0, low_open=True, high=0.1, allowed="a number in (0, 0.1]")
    if not isinstance(grid, Grid):
        raise ConfigError("grid", type(grid).__name__, "a meanfield.pde.Grid (make_grid)")
    if isinstance(problem, PlaneProblem):
        if len(grid.cells) != 2:
            raise ConfigError("grid", grid, "a two-dimensional grid for the plane setting")
        packed = _plane_pack(problem, grid, params)
        work = grid.cells[0] * grid.cells[1]
        kernel = _k.plane_advance
    elif isinstance(problem, RadialProblem):
        if len(grid.cells) != 1 or grid.lower[0] != 0.0:
            raise ConfigError("grid", grid, "a one-dimensional grid on [0, s_max] for the radial setting")
        packed = _radial_pack(problem, grid, params)
        work = grid.cells[0] * problem.R.shape[0]
        kernel = _k.radial_advance
    else:
        raise ConfigError("problem", type(problem).__name__, "a PlaneProblem or a RadialProblem")
    par = (work >= PARALLEL_MIN_WORK) if parallel is None else bool(parallel)
    dt_max = math.inf if params.dt_max is None else float(params.dt_max)
    scheme = _k.Scheme(int(params.order), float(params.cfl), dt_max, int(par))
    shape = tuple(grid.cells)

    def init(initial=None, step: int = 0) -> DensityState:
        if isinstance(initial, np.ndarray):
            rho = np.array(initial, dtype=np.float64)
            if rho.shape != shape or not np.all(np.isfinite(rho)) or np.any(rho < 0):
                raise ConfigError("initial", f"array of shape {rho.shape}", f"a finite density >= 0 of shape {shape}")
        else:
            rho = _initial_density(problem, grid, initial)
        rho = np.ascontiguousarray(rho)
        off = 1.0 - float(rho.sum()) * grid.cell_volume
        return DensityState(int(step), 0.0, rho, max(off, 0.0))

    def _run(state, n_steps, t_end):
        rho = np.array(state.density, dtype=np.float64, order="C")
        status, done, t, outflow = kernel(rho, packed, scheme, float(state.t), int(n_steps), float(t_end),
                                          float(state.outflow))
        new = DensityState(int(state.step) + int(done), float(t), rho, float(outflow))
        if status != _k.OK:
            from .errors import DivergenceError

            raise DivergenceError(new.step, new.t, float("nan"), state=new)
        if new.outflow > tol:
            raise OutflowError("pde.extent", [list(grid.lower), list(grid.upper)],
                               f"a larger grid: {new.outflow:.3g} of the mass is off the grid at t = {new.t:.4g}, "
                               f"above pde.tolerance = {tol:g}", state=new)
        return new

    def advance(state: DensityState, n_steps: int) -> DensityState:
        n = check_int("n_steps", n_steps, low=0, allowed="a non-negative integer")
        return _run(state, n, math.inf)

    def advance_to(state: DensityState, t: float) -> DensityState:
        t = check_number("t", t, low=state.t, allowed=f"a finite time >= state.t = {state.t}")
        return _run(state, 2**62, t)

    flow = PDEFlow(init, advance, advance_to, None, problem, grid, params, tol)
    obs = pde_observers(flow)

    def observe(state: DensityState) -> dict:
        out = {}
        for fn in obs.values():
            out.update(fn(state))
        return out

    return flow._replace(observe=observe)


# --------------------------------------------------------------------------------------------------------
# observers, measures, comparisons
# --------------------------------------------------------------------------------------------------------


def _plane_residual(problem: PlaneProblem, wpts, A, par=False):
    r = np.empty(problem.x.shape[0])
    _k.residuals(np.ascontiguousarray(wpts, dtype=np.float64), np.ascontiguousarray(A, dtype=np.float64),
                 problem.x, problem.y, get_activation(problem.activation).code, r, int(par))
    return r


def _radial_residual(problem: RadialProblem, s, weights):
    phi, _ = radial_phi(problem, np.outer(problem.R, s))
    F = problem.a0 * (phi.reshape(problem.R.shape[0], -1) @ weights)
    return F - problem.f_star


def _state_residual(flow: PDEFlow, state: DensityState):
    problem, grid = flow.problem, flow.grid
    rho = state.density
    if isinstance(problem, PlaneProblem):
        A = (grid.centres(0) @ rho) * grid.cell_volume
        return _plane_residual(problem, grid.centres(1), A)
    packed = _radial_pack(problem, grid, flow.params)
    F = problem.a0 * packed.h * (packed.phi_t @ rho)
    return F - problem.f_star


def pde_observers(flow: PDEFlow, *, radius=None) -> dict:
    r"""Observers of a PDE flow: ``name -> obs(state) -> dict of floats``.

    * ``risk``: :math:`R(\mu_t) = \frac12\sum_k q_k (f_{\mu_t}(x_k) - y_k)^2` (radial:
      :math:`\frac12 E_R[(F(R) - F^*(R))^2]`) with the cell-centre (midpoint) rule in :math:`\theta`;
    * ``mass`` (on the grid) and ``outflow`` (off it; ``mass + outflow = 1``);
    * ``moments``: plane ``mean_a, mean_w, m2_a, m2_w, m_aw`` (raw moments :math:`\int\theta\,d\mu`,
      :math:`\int\theta_i\theta_j\,d\mu` by the midpoint rule); radial ``mean_s, m2_s``;
    * ``mass_near_teacher``: mass within ``radius`` of a teacher point :math:`(a^*_k, w^*_k)` (plane, default
      radius 0.25) or of a teacher radius :math:`s^*_i` (radial, default 0.1); absent without a teacher.
    """
    problem, grid = flow.problem, flow.grid
    vol = grid.cell_volume
    obs = {}

    def risk(state):
        r = _state_residual(flow, state)
        return {"risk": 0.5 * float(np.dot(problem.q, r * r))}

    def mass(state):
        return {"mass": float(state.density.sum() * vol), "outflow": float(state.outflow)}

    obs["risk"], obs["mass"] = risk, mass
    if isinstance(problem, PlaneProblem):
        ac, wc = grid.centres(0), grid.centres(1)

        def moments(state):
            rho = state.density * vol
            ma, mw = rho.sum(1), rho.sum(0)
            return {"mean_a": float(ac @ ma), "mean_w": float(wc @ mw), "m2_a": float(ac**2 @ ma),
                    "m2_w": float(wc**2 @ mw), "m_aw": float(ac @ rho @ wc)}

        obs["moments"] = moments
        if problem.teacher is not None:
            rad = 0.25 if radius is None else float(radius)
            A, W = np.meshgrid(ac, wc, indexing="ij")
            near = np.zeros(A.shape, bool)
            for a_s, w_s in problem.teacher:
                near |= (A - a_s) ** 2 + (W - w_s) ** 2 <= rad * rad

            def mass_near_teacher(state):
                return {"mass_near_teacher": float(state.density[near].sum() * vol)}

            obs["mass_near_teacher"] = mass_near_teacher
    else:
        sc = grid.centres(0)

        def moments(state):
            m = state.density * vol
            return {"mean_s": float(sc @ m), "m2_s": float(sc**2 @ m)}

        obs["moments"] = moments
        rad = 0.1 if radius is None else float(radius)
        near = np.zeros(sc.shape, bool)
        for s_s in problem.teacher[:, 1]:
            near |= np.abs(sc - s_s) <= rad

        def mass_near_teacher(state):
            return {"mass_near_teacher": float(state.density[near].sum() * vol)}

        obs["mass_near_teacher"] = mass_near_teacher
    return obs


def as_measure(flow: PDEFlow, state: DensityState, *, min_weight=0.0):
    r"""The density as a weighted point cloud: cell centres and normalised cell masses.

    Parameters
    ----------
    min_weight : float
        Cells whose normalised mass is at most this are dropped (0 keeps every cell with positive mass).

    Returns
    -------
    points : ndarray, shape (K, p)
        Plane: columns (a, w); radial: the column s.
    weights : ndarray, shape (K,)
        Summing to 1.
    """
    grid = flow.grid
    w = state.density.reshape(-1) * grid.cell_volume
    w = w / w.sum()
    if len(grid.cells) == 2:
        A, W = np.meshgrid(grid.centres(0), grid.centres(1), indexing="ij")
        pts = np.column_stack([A.reshape(-1), W.reshape(-1)])
    else:
        pts = grid.centres(0)[:, None]
    keep = w > min_weight
    w = w[keep]
    return np.ascontiguousarray(pts[keep]), w / w.sum()


def _particle_coords(flow_or_problem, theta):
    problem = flow_or_problem.problem if isinstance(flow_or_problem, PDEFlow) else flow_or_problem
    th = np.asarray(theta, dtype=np.float64)
    if isinstance(problem, PlaneProblem):
        if th.ndim != 2 or th.shape[1] != 2:
            raise ConfigError("theta", f"array of shape {th.shape}", "particles (m, 2) with columns (a, w)")
        return th
    if th.ndim == 1:
        return th[:, None]
    if th.ndim == 2 and th.shape[1] == problem.d + 1:
        return (np.linalg.norm(th[:, 1:], axis=1) / math.sqrt(problem.d))[:, None]
    raise ConfigError("theta", f"array of shape {th.shape}", f"radii s (m,) or particles (m, {problem.d + 1})")


def w2_to_particles(flow: PDEFlow, state: DensityState, theta, *, min_weight=1e-14, density="points"):
    r"""Exact :math:`W_2` between the particles' empirical measure and the density.

    Parameters
    ----------
    theta : ndarray
        Plane: particles (m, 2). Radial: radii (m,) or particles (m, d + 1) (then :math:`s = |w|/\sqrt d`).
    min_weight : float
        ``density="points"``: cells with a normalised mass at most this are left out (their total is below
        ``K * min_weight``).
    density : {"points", "cells"}
        ``"points"``: the cells as weighted points at their centres, through
        :func:`meanfield.transport.exact` (POT's network simplex); the quantisation to cell centres is a W2
        floor of about :math:`h/\sqrt{12}` per dimension. ``"cells"`` (one-dimensional grids only): the density
        as the piecewise-constant function it stands for, by the quantile formula
        :math:`W_2^2 = \int_0^1 (Q_m(u) - Q(u))^2\,du` (Q piecewise linear, :math:`Q_m` a step function),
        integrated exactly on the merged breakpoints: no quantisation floor, O((m + n) log(m + n)) work.

    Returns
    -------
    meanfield.transport.W2
        ``method="exact"``; ``params["solver"]`` is POT's (``"points"``) or ``"quantile"`` (``"cells"``).
    """
    from .transport import W2, exact

    if density == "points":
        pts, w = as_measure(flow, state, min_weight=min_weight)
        return exact(_particle_coords(flow, theta), pts, weights_nu=w)
    if density != "cells":
        raise ConfigError("density", density, "'points' (cell centres, POT) or 'cells' (piecewise constant, 1-D)")
    grid = flow.grid
    if len(grid.cells) != 1:
        raise ConfigError("density", density, "'points' for a two-dimensional grid ('cells' needs one dimension)")
    x = np.sort(_particle_coords(flow, theta)[:, 0])
    value = math.sqrt(_w2_sq_cells(grid.faces(0), state.density * grid.cell_volume, x))
    params = {"solver": "quantile", "m": int(x.shape[0]), "n": int(grid.cells[0]), "p": 1, "density": "cells"}
    return W2(value, "exact", params, 0.0, True, value, value)


def marginal_w2(flow: PDEFlow, state: DensityState, theta) -> np.ndarray:
    r"""Exact :math:`W_2` between each one-dimensional marginal of the particles and of the density.

    The density's marginals are piecewise constant on the grid's cells (their cell masses summed over the other
    axis), so each distance is computed by the quantile formula of :func:`w2_to_particles` with
    ``density="cells"``: no quantisation floor.

    Returns
    -------
    ndarray
        Plane: :math:`(W_2^{(a)}, W_2^{(w)})`; radial: :math:`(W_2^{(s)},)`. For any coupling the cost splits
        over the coordinates, so :math:`\big(\sum_i (W_2^{(i)})^2\big)^{1/2} \le W_2` of the joint measures.
    """
    grid = flow.grid
    pts = _particle_coords(flow, theta)
    mass = state.density * grid.cell_volume
    out = []
    for axis in range(len(grid.cells)):
        marg = mass if mass.ndim == 1 else mass.sum(axis=1 - axis)
        out.append(math.sqrt(_w2_sq_cells(grid.faces(axis), marg, np.sort(pts[:, axis]))))
    return np.array(out)


def _w2_sq_cells(faces, mass, x):
    r""":math:`W_2^2` between the piecewise-constant density with cell masses ``mass`` on ``faces`` (normalised
    here) and the uniform empirical measure of the sorted points ``x``.

    On :math:`[0, 1]` cut at the cumulative masses :math:`C_c` and at :math:`j/m`, the quantile function of the
    density is linear, :math:`Q(u) = f_c + h (u - C_c)/\text{mass}_c`, and that of the points is the constant
    :math:`x_j`; each piece contributes :math:`(u_1 - u_0)(e_0^2 + e_0 e_1 + e_1^2)/3` with :math:`e = Q - x_j`
    at its ends."""
    mass = np.asarray(mass, dtype=np.float64)
    total = mass.sum()
    if not total > 0:
        raise ConfigError("state", "a density without mass", "a density with positive mass on the grid")
    mass = mass / total
    C = np.concatenate([[0.0], np.cumsum(mass)])
    C[-1] = 1.0
    m = x.shape[0]
    cuts = np.union1d(C, np.arange(m + 1) / m)
    u0, u1 = cuts[:-1], cuts[1:]
    keep = u1 > u0
    u0, u1 = u0[keep], u1[keep]
    mid = 0.5 * (u0 + u1)
    j = np.minimum((mid * m).astype(np.intp), m - 1)
    c = np.clip(np.searchsorted(C, mid, side="right") - 1, 0, mass.shape[0] - 1)
    h = faces[1] - faces[0]
    mc = np.maximum(mass[c], np.finfo(float).tiny)
    q0 = faces[c] + h * np.clip((u0 - C[c]) / mc, 0.0, 1.0)
    q1 = faces[c] + h * np.clip((u1 - C[c]) / mc, 0.0, 1.0)
    e0, e1 = q0 - x[j], q1 - x[j]
    return float(np.sum((u1 - u0) * (e0 * e0 + e0 * e1 + e1 * e1)) / 3.0)


def _particle_weights(weights, m):
    """Uniform 1/m, or validated weights (m,) >= 0 summing to 1."""
    if weights is None:
        return np.full(m, 1.0 / m)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (m,) or not np.all(np.isfinite(w)) or np.any(w < 0) or abs(w.sum() - 1.0) > 1e-12:
        raise ConfigError("weights", f"array of shape {w.shape}", f"{m} finite weights >= 0 summing to 1")
    return w


def _residual_of_particles(problem, s, weights):
    if isinstance(problem, PlaneProblem):
        return _plane_residual(problem, s[:, 1], s[:, 0] * weights)
    return _radial_residual(problem, s[:, 0], weights)


def particle_risk(problem, theta, weights=None) -> float:
    r"""The risk of a particle measure with the problem's own rule (the same numbers the PDE's risk uses).

    Plane: particles (m, 2), :math:`f(x_k) = \sum_j \omega_j a_j\sigma(w_j x_k)`. Radial: radii (m,) or
    particles (m, d + 1), output weight :math:`a_0`, each neuron averaged over directions (the
    rotation-invariant measure with the particles' law of s). ``weights`` :math:`\omega_j` (m,), >= 0 and
    summing to 1: a weighted measure (a quadrature rule of a law); by default :math:`\omega_j = 1/m`.
    """
    s = _particle_coords(problem, theta)
    r = _residual_of_particles(problem, s, _particle_weights(weights, s.shape[0]))
    return 0.5 * float(np.dot(problem.q, r * r))


def _velocities_in(problem, params, s, r):
    """Velocities at the points s (plane (m, 2), radial (m, 1)) of the field whose residual at the problem's
    input nodes is r (no Bessel drift)."""
    if isinstance(problem, PlaneProblem):
        m = s.shape[0]
        g, h = np.empty(m), np.empty(m)
        _k.potential_gradients(np.ascontiguousarray(s[:, 1]), problem.x, problem.q, np.ascontiguousarray(r),
                               get_activation(problem.activation).code, g, h, 0)
        lr_a, lr_w = params.lr * params.layer_lr[0], params.lr * params.layer_lr[1]
        return np.column_stack([-lr_a * g - params.weight_decay * s[:, 0],
                                -lr_w * s[:, 0] * h - params.weight_decay * s[:, 1]])
    sv = np.ascontiguousarray(s[:, 0])
    _, dphi = radial_phi(problem, np.outer(sv, problem.R))
    dpsi = (dphi.reshape(sv.shape[0], -1) * problem.R) @ (problem.q * r)
    return -(params.lr * params.layer_lr[1] * problem.a0 / problem.d) * dpsi - params.weight_decay * sv


def particle_velocities(problem, params, theta, weights=None) -> np.ndarray:
    r"""The PDE's velocity field evaluated at particles, for the measure of those particles.

    Plane: (m, 2) velocities :math:`(-\eta\eta_a g(w_j) - \lambda a_j,\ -\eta\eta_w a_j h(w_j) - \lambda w_j)`
    with :math:`g, h` of the kernels; these are the particle engine's mean-field velocities (checked in
    tests against :func:`meanfield.population.population_velocities` and :func:`meanfield.flow.velocities`).
    Radial: (m,) velocities :math:`\dot s_j = -\eta\eta_w a_0 \Psi'(s_j)/d - \lambda s_j` (no Bessel drift:
    that is the noise's). ``weights``: as in :func:`particle_risk` (the measure :math:`\sum_j\omega_j
    \delta_{\theta_j}`; each point still moves with the velocity field of that measure).
    """
    params = PDEParams() if params is None else params
    s = _particle_coords(problem, theta)
    m = s.shape[0]
    if weights is not None:
        return _velocities_in(problem, params, s, _residual_of_particles(problem, s, _particle_weights(weights, m)))
    if isinstance(problem, PlaneProblem):
        return _velocities_in(problem, params, s, _plane_residual(problem, s[:, 1], s[:, 0] / m))
    v = np.empty(m)
    _k.radial_particles(get_activation(problem.activation).code, np.ascontiguousarray(s[:, 0]), problem.R,
                        problem.q, problem.f_star, float(problem.a0), problem.u, problem.wu,
                        params.lr * params.layer_lr[1] * problem.a0 / problem.d, params.weight_decay, v)
    return v


def field_velocities(flow: PDEFlow, state: DensityState, theta) -> np.ndarray:
    r"""The velocity field of the density ``state`` at arbitrary points (its characteristics).

    The formulas of :func:`particle_velocities` with the measure fixed to the grid's density rather than the
    points' own: plane (m, 2) velocities :math:`(-\eta\eta_a g(w) - \lambda a, -\eta\eta_w a h(w) - \lambda w)`
    with g, h from the grid's residual; radial (m,) velocities :math:`-\eta\eta_w a_0\Psi'(s)/d - \lambda s`
    (no Bessel drift: that is the noise's). At the cell faces these are the velocities of
    :func:`face_velocities` (advection only). With :math:`\tau = 0`, points moved by this field along the PDE's
    solution are the *nonlinear* particles :math:`\bar\theta_j(t) = \Phi_t(\theta_j(0))` of the
    propagation-of-chaos coupling (docs/conventions.md).
    """
    s = _particle_coords(flow, theta)
    return _velocities_in(flow.problem, flow.params, s, _state_residual(flow, state))


def face_velocities(flow: PDEFlow, state: DensityState):
    """The velocities the scheme uses at the cell faces (advection only, no diffusion).

    Returns
    -------
    Plane: (va, vw), va of shape (na + 1, nw) at the a-faces, vw of shape (na, nw + 1) at the w-faces.
    Radial: v of shape (n + 1,) at the faces (v[0] = 0 at s = 0; with temperature the Bessel drift
    :math:`\\tau(d-1)/(ds)` is included).
    """
    problem, grid, params = flow.problem, flow.grid, flow.params
    if isinstance(problem, PlaneProblem):
        P = _plane_pack(problem, grid, params)
        na, nw = grid.cells
        A, r, g, h = np.empty(nw), np.empty(problem.x.shape[0]), np.empty(nw), np.empty(nw + 1)
        _k.plane_field(np.ascontiguousarray(state.density), P, A, r, g, h, 0)
        va = -P.lr_a * g[None, :] - P.lam * P.a_f[:, None]
        vw = -P.lr_w * P.a_c[:, None] * h[None, :] - P.lam * P.w_f[None, :]
        return va, vw
    R = _radial_pack(problem, grid, params)
    n = grid.cells[0]
    F, r, dpsi = np.empty(problem.R.shape[0]), np.empty(problem.R.shape[0]), np.empty(n + 1)
    _k.radial_field(np.ascontiguousarray(state.density), R, F, r, dpsi, 0)
    v = np.zeros(n + 1)
    v[1:] = -R.coef * dpsi[1:] - R.lam * R.s_f[1:] + R.drift / R.s_f[1:]
    return v
