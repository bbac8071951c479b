r"""Particle flows: every dynamics is a pair ``(init, advance)``.

``flow = particle_flow(data, model, dynamics)`` builds the gradient flow of the empirical risk on a finite
data set; ``state = flow.init(theta0)`` wraps initial particles in a :class:`FlowState`, and
``flow.advance(state, n_steps)`` returns the state ``n_steps`` steps later, all steps running inside one
compiled call. States are immutable; ``advance`` never modifies its input.

Each particle moves with (docs/conventions.md)

.. math:: \frac{d\theta_j}{dt} = -\eta\, \frac{m^{\beta}}{c^2}\, D\, \nabla_{\theta_j} R(\theta)
   - \lambda\theta_j + \sqrt{2\tau}\,\frac{dB_j}{dt},

discretised with step ``dt``; an explicit-Euler step is exactly one full-batch gradient-descent step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from ._kernels import advance as _adv
from .data import as_dataset
from .errors import ConfigError, DivergenceError
from .model import Model, check_inputs, check_particles, kernels_for
from .threads import threads_for
from .validate import check_choice, check_int, check_number

__all__ = ["Dynamics", "FlowState", "Flow", "particle_flow", "velocities", "INTEGRATORS"]

INTEGRATORS = {
    "euler": _adv.EULER,
    "heun": _adv.HEUN,
    "rk4": _adv.RK4,
    "euler_maruyama": _adv.EULER_MARUYAMA,
    "sgd": _adv.SGD,
}

#: A coordinate beyond this magnitude counts as a blow-up.
BLOWUP = 1e10


@dataclass(frozen=True)
class Dynamics:
    r"""How the particles move.

    Parameters
    ----------
    lr : float
        Learning rate :math:`\eta > 0`.
    dt : float
        Time step (> 0). With ``integrator="euler"`` one step is one gradient-descent step.
    integrator : {"euler", "heun", "rk4", "euler_maruyama", "sgd"}
        ``euler_maruyama`` is required for ``temperature > 0`` on the full batch; ``sgd`` draws a batch of
        ``batch_size`` points without replacement each step (and adds the Langevin noise when
        ``temperature > 0``).
    temperature : float
        :math:`\tau \ge 0`: the noise :math:`\sqrt{2\tau}\,dB_j` of (mean-field) Langevin dynamics.
    weight_decay : float
        :math:`\lambda \ge 0`.
    layer_lr : (float, float, float)
        :math:`(\eta_a, \eta_w, \eta_b) \ge 0`: the diagonal of :math:`D`. A rate of 0 freezes that layer
        (its coordinates then move only by weight decay and noise), as in :func:`meanfield.ntk.empirical_ntk`
        and :func:`meanfield.ntk.analytic_ntk`, where that layer's contribution to the kernel drops out.
    batch_size : int, optional
        Batch size B for ``sgd``.
    seed : int
        Key of the counter-based noise and batches: draws are pure functions of (seed, step, index).
    """

    lr: float = 1.0
    dt: float = 0.01
    integrator: str = "euler"
    temperature: float = 0.0
    weight_decay: float = 0.0
    layer_lr: tuple = (1.0, 1.0, 1.0)
    batch_size: int | None = None
    seed: int = 0

    def __post_init__(self):
        check_number("dynamics.lr", self.lr, low=0, low_open=True)
        check_number("dynamics.dt", self.dt, low=0, low_open=True)
        check_number("dynamics.temperature", self.temperature, low=0)
        check_number("dynamics.weight_decay", self.weight_decay, low=0)
        check_choice("dynamics.integrator", self.integrator, INTEGRATORS)
        lrs = tuple(self.layer_lr) if isinstance(self.layer_lr, (tuple, list, np.ndarray)) else None
        if lrs is None or len(lrs) != 3:
            raise ConfigError("dynamics.layer_lr", self.layer_lr, "three numbers (eta_a, eta_w, eta_b) >= 0")
        lrs = tuple(check_number("dynamics.layer_lr", v, low=0,
                                 allowed="three finite numbers (eta_a, eta_w, eta_b) >= 0 (0 freezes a layer)")
                    for v in lrs)
        object.__setattr__(self, "layer_lr", lrs)
        if self.temperature > 0 and self.integrator not in ("euler_maruyama", "sgd"):
            raise ConfigError(
                "dynamics.integrator", self.integrator,
                "'euler_maruyama' or 'sgd' when temperature > 0 (Heun and RK4 are for deterministic flows)",
            )
        if self.integrator == "sgd":
            check_int("dynamics.batch_size", self.batch_size, low=1,
                      allowed="a positive integer with integrator = 'sgd'")
        elif self.batch_size is not None:
            raise ConfigError("dynamics.batch_size", self.batch_size, "no batch_size unless integrator = 'sgd'")
        check_int("dynamics.seed", self.seed, low=0, high=2**63 - 1, allowed="an integer in [0, 2**63)")

    def describe(self) -> dict:
        """JSON-serialisable description (for result files)."""
        return {
            "lr": self.lr, "dt": self.dt, "integrator": self.integrator, "temperature": self.temperature,
            "weight_decay": self.weight_decay, "layer_lr": list(self.layer_lr), "batch_size": self.batch_size,
            "seed": int(self.seed),
        }


class FlowState(NamedTuple):
    """State of a flow: the global step counter, the time ``t = step * dt`` and the particles (m, p)."""

    step: int
    t: float
    theta: np.ndarray


class Flow(NamedTuple):
    """A dynamics: ``init(theta0) -> FlowState`` and ``advance(state, n_steps) -> FlowState``.

    ``model``, ``dynamics`` and ``problem`` are kept for observers and recorders. ``problem`` is what the flow
    trains on, one of three types, each with a ``risks(theta, model) -> dict`` method (the one way its risks are
    evaluated): a :class:`~meanfield.data.Dataset` (finite data), a :class:`~meanfield.population.Population`
    (Gaussian inputs and a teacher) or a :class:`~meanfield.linearized.Linearization` (a data set and the point
    the network is linearised at).
    """

    init: Callable
    advance: Callable
    model: Model
    dynamics: Dynamics
    problem: object


def _check_targets(y, n, model, key="y"):
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ConfigError(key, f"array of shape {arr.shape}", f"shape (n,) with n = {n} (rows of X)")
    arr = np.ascontiguousarray(arr, dtype=model.np_dtype)
    if not np.all(np.isfinite(arr)):
        raise ConfigError(key, "array with NaN or Inf", "finite values")
    return arr


def make_field(X, y, model: Model, dynamics: Dynamics) -> _adv.Field:
    """Validate (X, y) and pack the velocity field of the finite-data flow for the kernels."""
    X = check_inputs(X, model)
    y = _check_targets(y, X.shape[0], model)
    eta_a, eta_w, eta_b = dynamics.layer_lr
    D = np.full(model.p, eta_w)
    D[0] = eta_a
    if model.bias:
        D[-1] = eta_b
    sc = model.scale
    coef = dynamics.lr * sc.velocity_scale(model.m)
    return _adv.Field(_adv.FINITE, model.act.code, model.bias, X, y, D, model.output_scale, coef, dynamics.weight_decay)


def _stepper(dynamics: Dynamics) -> _adv.Stepper:
    return _adv.Stepper(
        INTEGRATORS[dynamics.integrator], float(dynamics.dt), float(dynamics.temperature),
        int(dynamics.batch_size or 0), int(dynamics.seed), BLOWUP,
    )


def field_work(field: _adv.Field, stepper: _adv.Stepper, model: Model) -> int:
    """Work of one velocity evaluation (points or particle pairs, times particles, times parameters per particle):
    what :func:`meanfield.threads.threads_for` compares with its serial threshold."""
    if field.kind == _adv.POPULATION:
        rows = model.m + field.teacher.shape[0]  # the pair table over particles and teacher neurons
    elif stepper.integrator == _adv.SGD or field.kind == _adv.ONLINE:
        rows = stepper.batch or field.X.shape[0]
    else:
        rows = field.X.shape[0]
    return rows * model.m * model.p


def flow_from_field(field: _adv.Field, model: Model, dynamics: Dynamics, problem) -> Flow:
    """The ``(init, advance)`` pair over a packed velocity field: shared by every flow constructor."""
    stepper = _stepper(dynamics)
    kernels = kernels_for(model)
    work = field_work(field, stepper, model)

    def init(theta0, step: int = 0) -> FlowState:
        theta = check_particles(theta0, model, key="theta0").copy()
        step = check_int("step", step, low=0)
        return FlowState(int(step), int(step) * dynamics.dt, theta)

    def advance(state: FlowState, n_steps: int) -> FlowState:
        n_steps = check_int("n_steps", n_steps, low=0)
        theta = state.theta.copy()
        with threads_for(work, population=field.kind == _adv.POPULATION):
            status, done = kernels.advance(theta, field, stepper, int(state.step), int(n_steps))
        step = int(state.step) + int(done)
        new = FlowState(step, step * dynamics.dt, theta)
        if status != 0:
            raise DivergenceError(step, new.t, dynamics.dt, state=new)
        return new

    return Flow(init, advance, model, dynamics, problem)


def particle_flow(data, model: Model, dynamics: Dynamics) -> Flow:
    """Gradient flow of the empirical risk on a finite data set.

    Parameters
    ----------
    data : Dataset or (X, y)
        Training inputs X, shape (n, d), and targets y, shape (n,) (a pair is wrapped by
        :func:`~meanfield.data.from_arrays`); the flow's ``problem``.
    model : Model
    dynamics : Dynamics

    Returns
    -------
    Flow
        ``init(theta0)`` validates the initial particles (m, p) and returns ``FlowState(0, 0.0, theta0)``;
        ``advance(state, n_steps)`` returns the state after ``n_steps`` steps, or raises
        :class:`~meanfield.errors.DivergenceError` (carrying the last good state) on NaN/Inf or blow-up.
    """
    data = as_dataset(data)
    return flow_from_field(finite_field(data, model, dynamics), model, dynamics, data)


def finite_field(data, model: Model, dynamics: Dynamics) -> _adv.Field:
    """The packed velocity field of gradient flow on a data set (checks the SGD batch against n)."""
    field = make_field(data.X, data.y, model, dynamics)
    if dynamics.integrator == "sgd" and dynamics.batch_size > field.X.shape[0]:
        raise ConfigError("dynamics.batch_size", dynamics.batch_size, f"at most n = {field.X.shape[0]} (training points)")
    return field


def velocities(theta, X, y, model: Model, dynamics: Dynamics | None = None) -> np.ndarray:
    r"""Particle velocities of gradient flow on the empirical risk (noise excluded).

    Parameters
    ----------
    theta : ndarray, shape (m, p)
    X : ndarray, shape (n, d)
    y : ndarray, shape (n,)
    model : Model
    dynamics : Dynamics, optional
        Supplies :math:`\eta`, :math:`D` and :math:`\lambda` (defaults: 1, identity, 0).

    Returns
    -------
    ndarray, shape (m, p)
        :math:`v_j = -\eta\, m^{\beta} c^{-2} D \nabla_{\theta_j} R - \lambda\theta_j`. For the
        ``mean_field`` preset this is :math:`-\eta D\nabla_\theta V(\theta_j;\mu) - \lambda\theta_j` with
        :math:`V(\theta;\mu) = \frac1n\sum_i (f(x_i) - y_i)\,\varphi(\theta; x_i)`.
    """
    dynamics = Dynamics() if dynamics is None else dynamics
    theta = check_particles(theta, model)
    field = make_field(X, y, model, dynamics)
    n = field.X.shape[0]
    out = np.empty_like(theta)
    r = np.empty(n, dtype=theta.dtype)
    with threads_for(n * model.m * model.p):
        kernels_for(model).velocity(field, theta, np.arange(n), n, r, out)
    return out
