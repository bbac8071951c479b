r"""Observers: what a run measures at every snapshot.

An :class:`Observer` is a function of a flow state that returns named values (numbers or arrays), with a short
description that the recorder stores beside the values in the result file. Every built-in quantity is computed
in exactly one place, here or in the module whose concept it is:

============== ========================================================= ========================================
observer       values                                                    computed by
============== ========================================================= ========================================
``risks``      ``train_loss``, ``test_loss`` (finite data and the        ``flow.problem.risks``:
               linearised network) or ``population_risk``                :func:`meanfield.model.risk`,
               (Gaussian inputs)                                         :func:`meanfield.population.population_risk`
``motion``     ``displacement`` :math:`\|\theta_t-\theta_0\|_F /         :func:`meanfield.transport.relative_displacement`,
               \|\theta_0\|_F`, ``identity_bound``                       :func:`meanfield.transport.identity_bound`
               :math:`(\frac1m\sum_j|\theta_j(t)-\theta_j(0)|^2)^{1/2}`
``w2``         ``w2_to_init`` :math:`W_2(\mu_t, \mu_0)`, ``w2_stderr``   :class:`meanfield.transport.W2ToInit`
``kernel``     ``kernel_change`` :math:`\|\Theta_t-\Theta_0\|_F /        :func:`meanfield.ntk.model_ntk`,
               \|\Theta_0\|_F`, ``kernel_alignment``                     :func:`meanfield.ntk.kernel_change`,
               :math:`y^\top\Theta_t y/(\|\Theta_t\|_F\|y\|^2)` on       :func:`meanfield.ntk.kernel_alignment`
               ``points`` probe inputs
============== ========================================================= ========================================

A run records ``risks``, ``motion`` and ``w2`` unless told otherwise (:data:`DEFAULT`). Costs per snapshot,
for m particles of p coordinates and n training points: ``risks`` O(n m p) (population: O(m (m + k)) kernel
evaluations); ``motion`` O(m p); ``w2`` exact up to m = 1000 (an assignment problem, O(m^3) at worst, about
0.1 s at m = 1000), a subsampled estimate above; ``kernel`` O(P^2 m p) for P probe points (P = 128 by default:
about 2 ms at m = 512, p = 9; the kernel at initialisation is computed once).

>>> import numpy as np, meanfield as mf
>>> model = mf.Model(d=2, m=4)
>>> theta0 = mf.init_particles(model, 0)
>>> flow = mf.particle_flow((np.eye(2), np.ones(2)), model, mf.Dynamics())
>>> [obs.name for obs in default_observers(flow, theta0)]
['risks', 'motion', 'w2']
>>> sorted(motion(theta0)(flow.init(theta0)))
['displacement', 'identity_bound']
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from .errors import ConfigError
from .validate import check_int

__all__ = ["Observer", "observer", "risks", "motion", "w2", "kernel", "default_observers", "OBSERVERS", "DEFAULT"]


class Observer(NamedTuple):
    """A named group of observables.

    Attributes
    ----------
    name : str
        The observer's name (``risks``, ``motion``, ...).
    description : str
        One line stored with each of its values in the result file (attribute ``description``).
    observe : callable
        ``observe(state) -> dict`` mapping value names to numbers or arrays.
    """

    name: str
    description: str
    observe: Callable

    def __call__(self, state) -> dict:
        return self.observe(state)


def observer(name: str, fn: Callable, description: str = "") -> Observer:
    """Wrap a function ``fn(state) -> number or array`` as an :class:`Observer` of one value named ``name``."""
    return Observer(name, description or f"user observable {name}", lambda state: {name: fn(state)})


def risks(flow) -> Observer:
    """The risks of the network on the flow's problem (``flow.problem.risks``)."""
    problem, model = flow.problem, flow.model
    return Observer("risks", f"risks of the network on its problem ({type(problem).__name__}): "
                             "(1/2) mean squared error, or the exact population risk",
                    lambda state: problem.risks(state.theta, model))


def motion(theta0) -> Observer:
    """How far the particles moved from ``theta0``: relative displacement and the identity-coupling bound."""
    from .transport import identity_bound, relative_displacement

    theta0 = np.array(theta0, dtype=np.float64)

    def observe(state):
        theta = np.asarray(state.theta, dtype=np.float64)
        return {"displacement": relative_displacement(theta, theta0),
                "identity_bound": identity_bound(theta, theta0)}

    return Observer("motion", "displacement = |theta_t - theta_0|_F / |theta_0|_F; identity_bound = "
                              "(mean_j |theta_j(t) - theta_j(0)|^2)^(1/2) >= W2(mu_t, mu_0)", observe)


def w2(theta0, *, method: str = "auto", seed: int = 0) -> Observer:
    """Wasserstein-2 distance of the particle measure to its initialisation (:class:`~meanfield.transport.W2ToInit`):
    ``w2_to_init`` and its standard error ``w2_stderr`` (0 when exact)."""
    from .transport import W2ToInit

    solver = W2ToInit(np.array(theta0, dtype=np.float64), method=method, seed=seed)

    def observe(state):
        r = solver(state.theta)
        return {"w2_to_init": float(r.value), "w2_stderr": float(r.stderr)}

    return Observer("w2", f"W2(mu_t, mu_0) between the particle measures: method {solver.method}, "
                          f"params {solver.params}", observe)


def _probe(problem, points: int, seed: int):
    """Probe inputs and targets of the kernel observer: the first ``points`` training points of a data set, or
    ``points`` Gaussian inputs labelled by the teacher of a population problem."""
    from .data import Dataset, teacher_outputs
    from .linearized import Linearization
    from .population import Population

    if isinstance(problem, Linearization):
        problem = problem.data
    if isinstance(problem, Dataset):
        return problem.X[:points], problem.y[:points]
    if isinstance(problem, Population):
        d = problem.teacher.shape[1] - 2
        X = np.random.default_rng(seed).standard_normal((points, d))
        T = problem.teacher
        teacher = T if np.any(T[:, -1] != 0) else T[:, :-1]
        return X, teacher_outputs(teacher, X, problem.activation)
    raise ConfigError("problem", type(problem).__name__, "a Dataset, Population or Linearization")


def kernel(flow, theta0, *, points: int = 128, seed: int = 0) -> Observer:
    r"""Tangent-kernel change and kernel-target alignment on ``points`` probe inputs.

    The kernel is the empirical NTK of the network the flow trains (:func:`meanfield.ntk.model_ntk`, with the
    flow's learning rates); for a linearised flow it is the kernel at the linearisation point, so its change is
    0 by construction. Cost O(points^2 m p) per snapshot.
    """
    from .linearized import Linearization
    from .ntk import kernel_alignment, kernel_change, model_ntk

    points = check_int("observers.kernel_points", points, low=2)
    X, y = _probe(flow.problem, points, seed)
    model, dynamics = flow.model, flow.dynamics
    frozen = isinstance(flow.problem, Linearization)
    K0 = model_ntk(np.asarray(theta0), X, model=model, dynamics=dynamics)

    def observe(state):
        K = K0 if frozen else model_ntk(state.theta, X, model=model, dynamics=dynamics)
        return {"kernel_change": kernel_change(K, K0), "kernel_alignment": kernel_alignment(K, y)}

    return Observer("kernel", f"empirical NTK on {X.shape[0]} probe inputs: kernel_change = "
                              "|K_t - K_0|_F / |K_0|_F; kernel_alignment = y^T K_t y / (|K_t|_F |y|^2)", observe)


#: Built-in observers by name: ``name -> factory(flow, theta0, **options)``.
OBSERVERS = {
    "risks": lambda flow, theta0, **kw: risks(flow),
    "motion": lambda flow, theta0, **kw: motion(theta0),
    "w2": lambda flow, theta0, w2_method="auto", seed=0, **kw: w2(theta0, method=w2_method, seed=seed),
    "kernel": lambda flow, theta0, kernel_points=128, seed=0, **kw: kernel(flow, theta0, points=kernel_points,
                                                                           seed=seed),
}
#: What a run records unless told otherwise.
DEFAULT = ("risks", "motion", "w2")


def default_observers(flow, theta0, record=DEFAULT, **options) -> list:
    """The observers named in ``record`` (from :data:`OBSERVERS`), measured against ``theta0``.

    Parameters
    ----------
    flow : Flow
    theta0 : ndarray, shape (m, p)
        The reference particles (the run's initialisation).
    record : sequence of str
    **options
        ``w2_method``, ``kernel_points``, ``seed``.

    Returns
    -------
    list of Observer
    """
    for name in record:
        if name not in OBSERVERS:
            raise ConfigError("observers.record", name, "names from " + ", ".join(OBSERVERS))
    return [OBSERVERS[name](flow, theta0, **options) for name in record]
