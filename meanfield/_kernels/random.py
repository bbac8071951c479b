"""Counter-based random numbers: every draw is a pure function of (seed, stream, step, index).

A step of a run draws its Langevin noise and its SGD batch from hashes of its global step number, so a run
is reproducible at any thread count and resumable from (seed, step) alone. The hash is splitmix64
(Steele, Lea & Flood 2014) applied in a chain over the four keys.
"""

import math

import numpy as np
from numba import njit

NOISE, BATCH = np.uint64(0), np.uint64(1)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_TWO_PI = 2.0 * math.pi


@njit(cache=True, inline="always")
def splitmix64(x):
    z = x + _GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True, inline="always")
def bits(seed, stream, step, index):
    """64 random bits keyed by four non-negative integers."""
    h = splitmix64(np.uint64(seed) ^ (np.uint64(stream) * _GOLDEN))
    h = splitmix64(h ^ np.uint64(step))
    return splitmix64(h ^ np.uint64(index))


@njit(cache=True, inline="always")
def uniform(seed, stream, step, index):
    """A double in [0, 1) from the top 53 bits."""
    return float(bits(seed, stream, step, index) >> _S11) * (1.0 / 9007199254740992.0)


@njit(cache=True, inline="always")
def normal(seed, stream, step, index):
    """A standard normal by Box-Muller from the uniforms at 2*index and 2*index + 1."""
    u1 = 1.0 - uniform(seed, stream, step, 2 * index)  # in (0, 1]
    u2 = uniform(seed, stream, step, 2 * index + 1)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(_TWO_PI * u2)


@njit(cache=True)
def normals(seed, stream, step, n):
    """Array of n standard normals for (seed, stream, step); used by tests and by Python callers."""
    out = np.empty(n)
    for i in range(n):
        out[i] = normal(seed, stream, step, i)
    return out
