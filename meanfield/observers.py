r"""Observables: small named functions of a flow state, recorded at every snapshot.

An observer is any callable ``obs(state) -> float | ndarray``. :func:`default_observers` gives the ones a
run records unless told otherwise:

* ``train_loss``: :math:`R(\theta) = \frac1{2n}\sum_i (f(x_i) - y_i)^2` on the training set;
* ``test_loss``: the same on the test set (when the data has one);
* ``displacement``: :math:`\|\theta_t - \theta_0\|_F / \|\theta_0\|_F`, the relative parameter displacement;
* ``identity_bound``: :math:`\big(\frac1m\sum_j |\theta_j(t) - \theta_j(0)|^2\big)^{1/2}`, the cost of the
  identity coupling, an upper bound on :math:`W_2(\mu_t, \mu_0)`;
* ``w2_to_init`` and ``w2_stderr``: :math:`W_2(\mu_t, \mu_0)` between the particle measures
  (:class:`meanfield.transport.W2ToInit`: exact for m <= 1000, a paired subsampled estimate with its standard
  error above). The method and its parameters are the observer's ``describe`` attribute, which the command line
  records in the result file (``/parameters/config``, key ``observers``).
"""

from __future__ import annotations

import numpy as np

from .model import outputs

__all__ = ["train_loss", "test_loss", "displacement", "identity_bound", "default_observers"]


def _loss(theta, X, y, model) -> float:
    r = outputs(theta, X, model).astype(np.float64) - np.asarray(y, dtype=np.float64)
    return 0.5 * float(np.sum(r * r)) / r.shape[0]


def train_loss(flow):
    """Observer: empirical risk on the training set of ``flow``."""
    X, y = (flow.data.X, flow.data.y) if hasattr(flow.data, "X") else flow.data
    return lambda state: _loss(state.theta, X, y, flow.model)


def test_loss(flow):
    """Observer: risk on the test set of ``flow.data`` (``X_test``, ``y_test``), or None when it has none."""
    X, y = getattr(flow.data, "X_test", None), getattr(flow.data, "y_test", None)
    if X is None or y is None or len(y) == 0:
        return None
    return lambda state: _loss(state.theta, X, y, flow.model)


def displacement(theta0):
    """Observer: :math:`\\|\\theta_t - \\theta_0\\|_F / \\|\\theta_0\\|_F`."""
    theta0 = np.array(theta0, dtype=np.float64)
    norm0 = float(np.linalg.norm(theta0))
    return lambda state: float(np.linalg.norm(state.theta - theta0)) / norm0


def identity_bound(theta0):
    """Observer: :math:`(\\frac1m\\sum_j|\\theta_j(t)-\\theta_j(0)|^2)^{1/2} \\ge W_2(\\mu_t, \\mu_0)`."""
    theta0 = np.array(theta0, dtype=np.float64)
    return lambda state: float(np.sqrt(np.mean(np.sum((state.theta - theta0) ** 2, axis=1))))


def w2_to_init(theta0) -> dict:
    """Observers ``w2_to_init`` and ``w2_stderr`` (one optimal-transport solve per snapshot, shared)."""
    from .transport import W2ToInit

    w2 = W2ToInit(np.array(theta0, dtype=np.float64))
    last = {}

    def solve(state):
        if last.get("step") != state.step or last.get("theta") is not state.theta:
            last.update(step=state.step, theta=state.theta, result=w2(state.theta))
        return last["result"]

    def value(state):
        return solve(state)["w2_to_init"]

    def stderr(state):
        return solve(state)["w2_stderr"]

    value.describe = stderr.describe = {"method": w2.method, "params": w2.params}
    return {"w2_to_init": value, "w2_stderr": stderr}


def default_observers(flow, theta0) -> dict:
    """``train_loss``, ``test_loss`` (if the data has a test set), ``displacement``, ``identity_bound``,
    ``w2_to_init``, ``w2_stderr``."""
    obs = {"train_loss": train_loss(flow)}
    t = test_loss(flow)
    if t is not None:
        obs["test_loss"] = t
    obs["displacement"] = displacement(theta0)
    obs["identity_bound"] = identity_bound(theta0)
    obs.update(w2_to_init(theta0))
    return obs
