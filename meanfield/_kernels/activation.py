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
