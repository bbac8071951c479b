r"""Activation functions :math:`\sigma` and their derivatives, by name.

``ACTIVATIONS`` maps each built-in name to an :class:`Activation` record whose integer ``code`` selects the
branch of the compiled scalar functions in ``meanfield._kernels.activation``. A user-supplied activation is
an :class:`Activation` built by :func:`custom` from a pair of numba-compilable scalar functions
``(sigma, dsigma)``; it runs through a separate, uncached compilation path (see docs/conventions.md).

=========== =============================================== ========================================
name        :math:`\sigma(z)`                                :math:`\sigma'(z)`
=========== =============================================== ========================================
identity    :math:`z`                                        :math:`1`
relu        :math:`\max(z, 0)`                               :math:`\mathbf 1[z > 0]` (0 at the kink)
erf         :math:`\operatorname{erf}(z)`                    :math:`2 e^{-z^2}/\sqrt\pi`
tanh        :math:`\tanh z`                                  :math:`1 - \tanh^2 z`
sigmoid     :math:`1/(1 + e^{-z})`                           :math:`\sigma(z)(1-\sigma(z))`
softplus    :math:`\log(1 + e^{z})`                          :math:`1/(1 + e^{-z})`
quadratic   :math:`z^2`                                      :math:`2z`
=========== =============================================== ========================================
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

from ._kernels import activation as _k
from .errors import ConfigError

__all__ = ["Activation", "ACTIVATIONS", "get_activation", "custom"]


class Activation(NamedTuple):
    """An activation function.

    Attributes
    ----------
    name : str
        Registry name, or the name given to :func:`custom`.
    code : int
        Branch of the compiled scalar functions; ``-1`` for a custom activation.
    sigma, dsigma : callable
        Scalar Python/numba functions :math:`\\sigma(z)` and :math:`\\sigma'(z)`.
    """

    name: str
    code: int
    sigma: Callable[[float], float]
    dsigma: Callable[[float], float]

    @property
    def is_custom(self) -> bool:
        return self.code < 0


def _builtin(name: str, code: int) -> Activation:
    return Activation(name, code, lambda z, c=code: _k.sigma(c, z), lambda z, c=code: _k.dsigma(c, z))


ACTIVATIONS = {
    "identity": _builtin("identity", _k.IDENTITY),
    "relu": _builtin("relu", _k.RELU),
    "erf": _builtin("erf", _k.ERF),
    "tanh": _builtin("tanh", _k.TANH),
    "sigmoid": _builtin("sigmoid", _k.SIGMOID),
    "softplus": _builtin("softplus", _k.SOFTPLUS),
    "quadratic": _builtin("quadratic", _k.QUADRATIC),
}


def custom(sigma: Callable, dsigma: Callable, name: str = "custom") -> Activation:
    """A user-supplied activation from a pair of scalar functions.

    Parameters
    ----------
    sigma, dsigma : callable
        Scalar functions ``float -> float``, either ``numba.njit``-decorated or plain Python functions that
        numba can compile in nopython mode. ``dsigma`` must be the derivative of ``sigma``.
    name : str
        Name recorded in outputs.

    Returns
    -------
    Activation
        With ``code = -1``. Kernels for it are compiled on first use in each process (not cached on disk).

    Examples
    --------
    >>> import math
    >>> act = custom(lambda z: math.sin(z), lambda z: math.cos(z), name="sin")
    >>> act.name, act.code
    ('sin', -1)
    """
    for key, fn in (("sigma", sigma), ("dsigma", dsigma)):
        if not callable(fn):
            raise ConfigError(f"activation.{key}", fn, "a scalar function float -> float that numba can compile")
    probe = 0.3
    try:
        s, ds = float(sigma(probe)), float(dsigma(probe))
    except Exception as exc:  # noqa: BLE001 - any failure means the pair is unusable
        raise ConfigError("activation", name, f"scalar functions callable on a float ({exc})") from None
    if not (math.isfinite(s) and math.isfinite(ds)):
        raise ConfigError("activation", name, "finite values of sigma and dsigma at z = 0.3")
    return Activation(str(name), -1, sigma, dsigma)


def get_activation(activation) -> Activation:
    """Look up an activation by name, or pass an :class:`Activation` through.

    Raises
    ------
    ConfigError
        For an unknown name, listing the allowed ones.
    """
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str) and activation in ACTIVATIONS:
        return ACTIVATIONS[activation]
    raise ConfigError("activation", activation, "one of " + ", ".join(ACTIVATIONS) + " or meanfield.activations.custom(...)")
