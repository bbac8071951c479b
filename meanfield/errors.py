"""Errors of meanfield: each one names what is wrong and what is allowed.

Every check of user input raises one of these, never a bare ``ValueError`` from deep inside numpy or numba,
so the command line can print a single line and exit with code 2.
"""

from __future__ import annotations

__all__ = ["MeanfieldError", "ConfigError", "DivergenceError", "FileFormatError"]


class MeanfieldError(Exception):
    """Base class of every error meanfield raises on purpose."""


class ConfigError(MeanfieldError, ValueError):
    """A parameter has a value that is not allowed.

    Parameters
    ----------
    key : str
        Name of the offending parameter (``"model.m"``, ``"dt"``, ...).
    value : object
        The value that was given.
    allowed : str
        What would have been accepted, in words.
    """

    def __init__(self, key: str, value, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"{key} = {shown} is not allowed: expected {allowed}")


class DivergenceError(MeanfieldError, FloatingPointError):
    """The integration produced NaN/Inf or blew up.

    Attributes
    ----------
    step : int
        Global index of the step that failed (the state before it is kept).
    t : float
        Time at the start of that step.
    state : object
        The last good state, from which a run can be continued with a smaller step.
    """

    def __init__(self, step: int, t: float, dt: float, state=None):
        self.step, self.t, self.dt, self.state = step, t, dt, state
        super().__init__(
            f"integration diverged at step {step} (t = {t:.6g}): the particles became non-finite or "
            f"exceeded 1e10 in magnitude; try a smaller dt than {dt:g} (the last good state is kept)"
        )


class FileFormatError(MeanfieldError, OSError):
    """A file could not be read as what it should be.

    Parameters
    ----------
    path : str
        The file.
    problem : str
        What is wrong with it.
    """

    def __init__(self, path, problem: str):
        self.path, self.problem = str(path), problem
        super().__init__(f"{path}: {problem}")
