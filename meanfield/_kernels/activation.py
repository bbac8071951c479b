"""Scalar activations sigma(code, z) and their derivatives dsigma(code, z), dispatched on an integer code.

The codes are the ``code`` fields of ``meanfield.activations.ACTIVATIONS``.
"""

import math

from numba import njit

IDENTITY, RELU, ERF, TANH, SIGMOID, SOFTPLUS, QUADRATIC = 0, 1, 2, 3, 4, 5, 6
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


@njit(cache=True, inline="always")
def sigma(code, z):
    if code == RELU:
        return z if z > 0.0 else 0.0 * z
    if code == ERF:
        return math.erf(z)
    if code == TANH:
        return math.tanh(z)
    if code == SIGMOID:
        if z >= 0.0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)
    if code == SOFTPLUS:
        return math.log1p(math.exp(-abs(z))) + (z if z > 0.0 else 0.0)
    if code == QUADRATIC:
        return z * z
    return z


@njit(cache=True, inline="always")
def dsigma(code, z):
    if code == RELU:
        return 1.0 if z > 0.0 else 0.0
    if code == ERF:
        return _TWO_OVER_SQRT_PI * math.exp(-z * z)
    if code == TANH:
        th = math.tanh(z)
        return 1.0 - th * th
    if code == SIGMOID:
        e = math.exp(-abs(z))
        return e / ((1.0 + e) * (1.0 + e))
    if code == SOFTPLUS:
        if z >= 0.0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)
    if code == QUADRATIC:
        return 2.0 * z
    return 1.0


@njit(cache=True, inline="always")
def sigma3(code, z):
    """(sigma(z), sigma'(z), sigma''(z)) of a built-in activation, sharing one transcendental evaluation."""
    if code == TANH:
        th = math.tanh(z)
        d1 = 1.0 - th * th
        return th, d1, -2.0 * th * d1
    if code == SIGMOID:
        e = math.exp(-abs(z))
        s = 1.0 / (1.0 + e) if z >= 0.0 else e / (1.0 + e)
        d1 = e / ((1.0 + e) * (1.0 + e))  # s (1 - s) without cancellation
        return s, d1, d1 * (1.0 - e) / (1.0 + e) * (1.0 if z < 0.0 else -1.0)  # s (1 - s) (1 - 2 s)
    if code == SOFTPLUS:
        e = math.exp(-abs(z))
        sp = math.log1p(e) + (z if z > 0.0 else 0.0)
        s = 1.0 / (1.0 + e) if z >= 0.0 else e / (1.0 + e)
        return sp, s, e / ((1.0 + e) * (1.0 + e))
    if code == ERF:
        g = _TWO_OVER_SQRT_PI * math.exp(-z * z)
        return math.erf(z), g, -2.0 * z * g
    if code == RELU:
        return (z if z > 0.0 else 0.0 * z), (1.0 if z > 0.0 else 0.0), 0.0
    if code == QUADRATIC:
        return z * z, 2.0 * z, 2.0
    return z, 1.0, 0.0
