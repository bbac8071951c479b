"""Checks of user values: one rule per call, each raising :class:`~meanfield.errors.ConfigError` that names the
key, the value and what is allowed.

Every module that takes numbers, flags, choices or dtypes from a user checks them here, so a value is refused
the same way wherever it enters (a TOML file, ``--set``, or a Python call)::

    check_int("model.m", m, low=1)                       # a positive integer (bools refused)
    check_number("dynamics.dt", dt, low=0, low_open=True)  # a finite float > 0
    check_bool("model.symmetric", symmetric)
    check_choice("dynamics.integrator", name, INTEGRATORS)
    check_dtype("model.dtype", dtype)                    # "float64" or "float32"

>>> check_int("model.m", 512, low=1)
512
>>> check_number("dynamics.dt", "0.1")
Traceback (most recent call last):
    ...
meanfield.errors.ConfigError: dynamics.dt = '0.1' is not allowed: expected a finite number
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .errors import ConfigError

__all__ = ["DTYPES", "check_int", "check_number", "check_bool", "check_choice", "check_dtype", "check_str"]

#: Floating-point types of particles, data and stored snapshots: name -> numpy type.
DTYPES = {"float64": np.float64, "float32": np.float32}


def _bounds(low, high, low_open, high_open) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    return " and ".join(parts)


def _in_bounds(v, low, high, low_open, high_open) -> bool:
    if low is not None and (v < low or (low_open and v == low)):
        return False
    if high is not None and (v > high or (high_open and v == high)):
        return False
    return True


def check_int(key: str, value, *, low=None, high=None, allowed: str | None = None) -> int:
    """An integer (not a bool, not a float such as 12.5 or 12.0) in ``[low, high]``.

    Returns
    -------
    int
    """
    ok = isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))
    if not ok or not _in_bounds(int(value), low, high, False, False):
        raise ConfigError(key, value, allowed or ("an integer " + _bounds(low, high, False, False)).strip())
    return int(value)


def check_number(key: str, value, *, low=None, high=None, low_open: bool = False, high_open: bool = False,
                 allowed: str | None = None) -> float:
    """A finite real number (int or float; not a bool, a string or NaN/inf) within the bounds.

    Returns
    -------
    float
    """
    ok = isinstance(value, (numbers.Real, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    v = float(value) if ok else math.nan
    if not math.isfinite(v) or not _in_bounds(v, low, high, low_open, high_open):
        raise ConfigError(key, value, allowed or ("a finite number " + _bounds(low, high, low_open, high_open)).strip())
    return v


def check_bool(key: str, value) -> bool:
    """``True`` or ``False`` (not 0/1, not the strings "yes"/"true")."""
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(key, value, "true or false")
    return bool(value)


def check_choice(key: str, value, choices) -> str:
    """One of ``choices`` (a string)."""
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(key, value, "one of " + ", ".join(repr(c) for c in choices))
    return value


def check_str(key: str, value, *, allowed: str = "a non-empty string") -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value:
        raise ConfigError(key, value, allowed)
    return value


def check_dtype(key: str, value) -> str:
    """A floating-point type of :data:`DTYPES`, given by name or as a numpy dtype; returns its name."""
    try:
        name = np.dtype(value).name if not isinstance(value, str) else value
    except TypeError:
        name = None
    if name not in DTYPES:
        raise ConfigError(key, value, " or ".join(DTYPES))
    return name
