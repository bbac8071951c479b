r"""The lazy regime: the network replaced by its linearisation at initialisation.

Function space (this part). Under gradient flow of the linearised network the outputs obey the linear ODE

.. math:: \frac{d f_t(x)}{dt} = -\frac1n \sum_{i=1}^n \Theta(x, x_i)\,(f_t(x_i) - y_i)

with a fixed kernel :math:`\Theta` (:mod:`meanfield.ntk`: empirical at initialisation or analytic).
:func:`function_space` solves it exactly from one eigendecomposition of :math:`\Theta(X, X)`, cached on first
use; :func:`function_space_from_particles` builds it from the same particles the particle flow starts from, so
the two can be compared point by point. :func:`loss_bound` is the linear-regime bound
:math:`L(t) \le L(0)\,e^{-2\lambda_{\min} t/n}`.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import numpy as np

from .activations import get_activation
from .errors import ConfigError
from .model import Model, outputs
from .ntk import _inputs, _particles, empirical_ntk
from .scaling import get_scaling
from .threads import threads_for

__all__ = ["Prediction", "function_space", "function_space_from_particles", "loss_bound", "decay_factors",
           "Linearization", "linearized_flow", "linearized_outputs"]


class Prediction(NamedTuple):
    """Outputs of the linearised network at the requested times.

    Attributes
    ----------
    train : ndarray, shape t.shape + y.shape
        :math:`f_t` on the training inputs.
    test : ndarray, shape t.shape + (n_test,) + y.shape[1:], or None
        :math:`f_t` on the test inputs; ``None`` when no test kernel was given.
    """

    train: np.ndarray
    test: Optional[np.ndarray]


def decay_factors(lam, t, n, cutoff=0.0):
    r"""The two functions of the eigenvalues that the exact solution needs.

    Parameters
    ----------
    lam : ndarray, shape (k,)
        Eigenvalues of :math:`\Theta(X, X)`; negative values (rounding) are treated as 0.
    t : ndarray, shape (T,)
        Non-negative times; ``np.inf`` allowed.
    n : float
        Normalisation of the risk (number of training points).
    cutoff : float
        At :math:`t = \infty`, eigenvalues ``<= cutoff`` count as exactly zero (their modes never move).

    Returns
    -------
    decay : ndarray, shape (T, k)
        :math:`e^{-\lambda t/n}`.
    integral : ndarray, shape (T, k)
        :math:`(1 - e^{-\lambda t/n})/\lambda`, with its limit :math:`t/n` at :math:`\lambda = 0`.

    Notes
    -----
    Computed as ``-expm1(-lam t/n)/lam``, accurate for :math:`\lambda t/n \ll 1`; no division by a zero
    eigenvalue ever happens. At :math:`t = \infty` the integral is :math:`1/\lambda` above the cut-off and
    0 below it (the pseudo-inverse), the decay 0 above and 1 below.
    """
    lam = np.maximum(np.asarray(lam, dtype=np.float64), 0.0)[None, :]
    t = np.asarray(t, dtype=np.float64).reshape(-1, 1)
    finite = np.isfinite(t)
    tf = np.where(finite, t, 0.0)
    x = lam * tf / n
    decay = np.exp(-x)
    pos = lam > 0.0
    integral = np.where(pos, -np.expm1(-x) / np.where(pos, lam, 1.0), tf / n)
    above = lam > cutoff
    decay = np.where(finite, decay, np.where(above, 0.0, 1.0))
    integral = np.where(finite, integral, np.where(above, 1.0 / np.where(above, lam, 1.0), 0.0))
    return decay, integral


def function_space(K_train, y, f0_train=None, *, n=None, rcond=None):
    r"""Exact function-space solution of the linearised dynamics.

    Parameters
    ----------
    K_train : ndarray, shape (n, n)
        :math:`\Theta(X, X)`, symmetric positive semi-definite up to rounding (it is symmetrised).
    y : ndarray, shape (n,) or (n, k)
        Targets.
    f0_train : ndarray, shape of ``y``, optional
        Outputs at initialisation on the training set; ``None`` means zero.
    n : float, optional
        The :math:`n` of :math:`1/n` in the ODE; defaults to ``K_train.shape[0]``.
    rcond : float, optional
        Relative cut-off for the :math:`t = \infty` limit: eigenvalues ``<= rcond * max(lam)`` are zero
        there. Default ``n * eps``.

    Returns
    -------
    predict : callable
        ``predict(t, K_test_train=None, f0_test=None) -> Prediction``. ``t`` is a non-negative scalar or a 1-D
        array (``np.inf`` allowed); ``K_test_train`` is :math:`\Theta(X_*, X)`, shape (n_test, n), and
        ``f0_test`` the outputs at initialisation on the test inputs (``None``: zero).

    Notes
    -----
    With :math:`\Theta(X, X) = V\Lambda V^\top` and :math:`r_0 = f_0(X) - y`,

    .. math:: f_t(X) = y + V e^{-\Lambda t/n} V^\top r_0, \qquad
              f_t(X_*) = f_0(X_*) - \Theta(X_*, X)\, V \frac{1 - e^{-\Lambda t/n}}{\Lambda} V^\top r_0 .

    No inverse is formed; :func:`decay_factors` handles :math:`\lambda \to 0`. The eigendecomposition
    happens once, on the first call of ``predict``.

    Examples
    --------
    >>> import numpy as np
    >>> K = np.array([[2.0, 1.0], [1.0, 2.0]])
    >>> predict = function_space(K, np.array([1.0, -1.0]))
    >>> np.round(predict(np.inf).train, 12)
    array([ 1., -1.])
    """
    K = np.asarray(K_train, dtype=np.float64)
    if K.ndim != 2 or K.shape[0] != K.shape[1] or K.shape[0] == 0:
        raise ConfigError("K_train", getattr(K, "shape", K_train), "a square (n, n) kernel matrix")
    if not np.all(np.isfinite(K)):
        raise ConfigError("K_train", "non-finite entries", "a finite kernel matrix")
    n_train = K.shape[0]
    y = np.asarray(y, dtype=np.float64)
    if y.ndim not in (1, 2) or y.shape[0] != n_train:
        raise ConfigError("y", y.shape, f"an array of shape ({n_train},) or ({n_train}, k)")
    if f0_train is None:
        f0 = np.zeros_like(y)
    else:
        f0 = np.asarray(f0_train, dtype=np.float64)
        if f0.shape != y.shape:
            raise ConfigError("f0_train", f0.shape, f"the shape of y, {y.shape}")
    if n is None:
        n = float(n_train)
    else:
        try:
            n = float(n)
        except (TypeError, ValueError):
            raise ConfigError("n", n, "a positive number") from None
        if not (math.isfinite(n) and n > 0):
            raise ConfigError("n", n, "a positive number")
    if rcond is None:
        rcond = n_train * np.finfo(np.float64).eps
    else:
        try:
            rcond = float(rcond)
        except (TypeError, ValueError):
            raise ConfigError("rcond", rcond, "a non-negative number") from None
        if not (math.isfinite(rcond) and rcond >= 0):
            raise ConfigError("rcond", rcond, "a non-negative number")
    K = 0.5 * (K + K.T)
    r0 = f0 - y
    cache = {}

    def _eig():
        if not cache:
            lam, V = np.linalg.eigh(K)
            lam = np.maximum(lam, 0.0)
            cache["lam"], cache["V"] = lam, V
            cache["coef"] = V.T @ r0  # (n,) or (n, k)
            cache["cutoff"] = rcond * (lam[-1] if lam.size else 0.0)
        return cache["lam"], cache["V"], cache["coef"], cache["cutoff"]

    def predict(t, K_test_train=None, f0_test=None):
        tt = np.asarray(t, dtype=np.float64)
        if tt.ndim > 1 or tt.size == 0 or np.any(np.isnan(tt)) or np.any(tt < 0):
            raise ConfigError("t", t, "a non-negative time or 1-D array of them (np.inf allowed)")
        lam, V, coef, cutoff = _eig()
        decay, integral = decay_factors(lam, tt.reshape(-1), n, cutoff)  # (T, n)
        tail = coef.shape[1:]
        scaled = decay.reshape(decay.shape + (1,) * len(tail)) * coef[None]  # (T, n, ...)
        train = y[None] + np.einsum("ij,tj...->ti...", V, scaled)
        test = None
        if K_test_train is not None:
            Ks = np.asarray(K_test_train, dtype=np.float64)
            if Ks.ndim != 2 or Ks.shape[1] != n_train or not np.all(np.isfinite(Ks)):
                raise ConfigError("K_test_train", getattr(Ks, "shape", K_test_train),
                                  f"a finite (n_test, {n_train}) kernel matrix")
            n_test = Ks.shape[0]
            if f0_test is None:
                f0s = np.zeros((n_test,) + tail)
            else:
                f0s = np.asarray(f0_test, dtype=np.float64)
                if f0s.shape != (n_test,) + tail:
                    raise ConfigError("f0_test", f0s.shape, f"an array of shape {(n_test,) + tail}")
            KV = Ks @ V  # (n_test, n)
            g = integral.reshape(integral.shape + (1,) * len(tail)) * coef[None]
            test = f0s[None] - np.einsum("ij,tj...->ti...", KV, g)
        elif f0_test is not None:
            raise ConfigError("f0_test", "given without K_test_train", "K_test_train with f0_test")
        if tt.ndim == 0:
            train = train[0]
            test = None if test is None else test[0]
        return Prediction(train, test)

    return predict


def loss_bound(t, loss0, lambda_min, n):
    r"""Upper bound :math:`L(0)\,e^{-2\lambda_{\min} t/n}` on the training loss in the linear regime.

    Parameters
    ----------
    t : float or ndarray
        Non-negative times.
    loss0 : float
        :math:`L(0) = \frac1{2n}\|f_0(X) - y\|^2` (any multiple of the squared residual norm works).
    lambda_min : float
        Smallest eigenvalue of :math:`\Theta(X, X)`; negative values (rounding) count as 0.
    n : float
        Number of training points.

    Returns
    -------
    float or ndarray

    Notes
    -----
    From :math:`r_t = e^{-\Theta t/n} r_0`: :math:`\|r_t\|^2 \le e^{-2\lambda_{\min}t/n}\|r_0\|^2`, with
    equality when :math:`r_0` is an eigenvector of the smallest eigenvalue.
    """
    t = np.asarray(t, dtype=np.float64)
    if np.any(np.isnan(t)) or np.any(t < 0):
        raise ConfigError("t", t, "non-negative times")
    lam = max(float(lambda_min), 0.0)
    n = float(n)
    if not n > 0:
        raise ConfigError("n", n, "a positive number")
    rate = lam * t if lam > 0.0 else np.zeros_like(t)
    out = float(loss0) * np.exp(-2.0 * rate / n)
    return float(out) if out.ndim == 0 else out


def function_space_from_particles(theta0, X, y, X_test=None, *, activation="relu", scaling="mean_field",
                                  lr=1.0, layer_lr=(1.0, 1.0, 1.0), bias=False, rcond=None):
    r"""The linearised network at a particle initialisation, solved in function space.

    Uses the empirical kernel :math:`\Theta_0` of ``theta0`` (:func:`meanfield.ntk.empirical_ntk`) and the
    outputs :math:`f_0` of the same particles, so ``predict(t)`` is directly comparable with the particle
    flow started from ``theta0`` with the same model quantities.

    Parameters
    ----------
    theta0 : ndarray, shape (m, p)
    X : ndarray, shape (n, d)
    y : ndarray, shape (n,)
    X_test : ndarray, shape (n_test, d), optional
    activation, scaling, lr, layer_lr, bias
        Model quantities, as in :func:`meanfield.ntk.empirical_ntk`.
    rcond : float, optional
        See :func:`function_space`.

    Returns
    -------
    predict : callable
        ``predict(t) -> Prediction`` (``test`` is ``None`` without ``X_test``).
    """
    act = get_activation(activation)
    sc = get_scaling(scaling)
    theta0 = _particles(theta0, bool(bias))
    d = theta0.shape[1] - 1 - int(bool(bias))
    X = _inputs(X, "X", d)
    kw = dict(activation=act, scaling=sc, lr=lr, layer_lr=layer_lr, bias=bias)
    model = Model(d=d, m=theta0.shape[0], activation=act, scaling=sc, bias=bool(bias))
    K = empirical_ntk(theta0, X, **kw)
    f0 = outputs(theta0, X, model)
    solve = function_space(K, y, f0, rcond=rcond)
    if X_test is None:
        return lambda t: solve(t)
    X_test = _inputs(X_test, "X_test", d)
    Ks = empirical_ntk(theta0, X_test, X, **kw)
    f0s = outputs(theta0, X_test, model)
    return lambda t: solve(t, Ks, f0s)


# ---------------------------------------------------------------------------------------------------------------
# Parameter space: the linearised network integrated like the particle flow
# ---------------------------------------------------------------------------------------------------------------


def linearized_outputs(theta, theta0, X, model) -> np.ndarray:
    r"""Outputs of the network linearised at ``theta0``.

    Parameters
    ----------
    theta, theta0 : ndarray, shape (m, p)
    X : ndarray, shape (n, d)
    model : Model

    Returns
    -------
    ndarray, shape (n,)
        :math:`f^{\rm lin}(x;\theta) = f(x;\theta^0) + c\,m^{-\alpha}\sum_j\nabla_\theta\varphi(\theta^0_j;x)\cdot
        (\theta_j-\theta^0_j)`.
    """
    from .model import check_inputs, check_particles, kernels_for, outputs

    theta = check_particles(theta, model)
    theta0 = check_particles(theta0, model, key="theta0")
    X = check_inputs(X, model)
    f0 = outputs(theta0, X, model)
    out = np.empty(X.shape[0], dtype=model.np_dtype)
    n = X.shape[0]
    with threads_for(n * model.m * model.p):
        kernels_for(model).lin_outputs(theta, theta0, X, f0, np.arange(n), n, model.act.code, model.bias,
                                       model.output_scale, out)
    return out


class Linearization(NamedTuple):
    """The problem of a linearised flow (``Flow.problem``): the data set and the linearisation point."""

    data: object  # a meanfield.data.Dataset
    theta0: np.ndarray

    def risks(self, theta, model) -> dict:
        r"""``train_loss`` (and ``test_loss`` with a test set) of the linearised network
        :math:`f^{\rm lin}(\cdot;\theta)` (:func:`linearized_outputs`), with the loss of
        :func:`meanfield.model.squared_loss`."""
        from .model import squared_loss

        ds = self.data
        out = {"train_loss": squared_loss(linearized_outputs(theta, self.theta0, ds.X, model), ds.y)}
        if ds.n_test:
            out["test_loss"] = squared_loss(linearized_outputs(theta, self.theta0, ds.X_test, model), ds.y_test)
        return out


def linearized_flow(data, model, dynamics, theta0):
    r"""Gradient flow of the network linearised at ``theta0``, in parameter space.

    The particles follow the same dynamics as :func:`~meanfield.flow.particle_flow` (same integrators, noise,
    weight decay, SGD batches), with the network replaced by its linearisation

    .. math:: f^{\rm lin}(x;\theta) = f(x;\theta^0) + \nabla_\theta f(x;\theta^0)\cdot(\theta - \theta^0).

    Without noise or weight decay its outputs on the training set follow the linear ODE
    :math:`\dot f = -\frac1n\Theta_0 (f - y)` exactly, the function-space solution of
    :func:`function_space` with the empirical kernel at ``theta0``; here every particle has a trajectory too
    (for optimal-transport distances and displacements).

    Parameters
    ----------
    data : Dataset or (X, y)
    model : Model
    dynamics : Dynamics
    theta0 : ndarray, shape (m, p)
        The linearisation point (normally the initial particles of the run).

    Returns
    -------
    Flow
        With ``problem`` a :class:`Linearization`.
    """
    from ._kernels import advance as _adv
    from .data import as_dataset
    from .flow import finite_field, flow_from_field
    from .model import check_particles, outputs

    data = as_dataset(data)
    theta0 = check_particles(theta0, model, key="theta0").copy()
    field = finite_field(data, model, dynamics)
    f0 = outputs(theta0, field.X, model)
    field = field._replace(kind=_adv.LINEARIZED, theta0=theta0, f0=f0)
    return flow_from_field(field, model, dynamics, Linearization(data, theta0))
