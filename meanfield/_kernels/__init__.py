"""Numba kernels: module-level ``@njit(cache=True)`` functions, arrays and integer codes in, arrays out.

Nothing here validates input or raises; the public API above checks everything first. Variants
(activation, integrator) are chosen by small integer codes, never by passing functions, so every
kernel is cached on disk (see docs/performance.md).
"""
