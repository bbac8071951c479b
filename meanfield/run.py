"""Run a flow: a Python loop over snapshots, compiled code between them.

:func:`simulate` advances a :class:`~meanfield.flow.Flow` by ``snapshot_every`` steps at a time, evaluates the
observers at every snapshot (the initial state included), hands everything to an optional recorder, shows a
progress bar on a terminal, and returns a :class:`Result`. On divergence the snapshots up to the last good state
are kept: the recorder is closed with status ``diverged`` and the :class:`~meanfield.errors.DivergenceError`
carries the partial result. On Ctrl-C the recorder is closed with status ``interrupted``.
"""

from __future__ import annotations

import math
import sys
from typing import NamedTuple

import numpy as np
from tqdm.auto import tqdm

from .errors import ConfigError, DivergenceError
from .flow import Flow, FlowState
from .observers import default_observers

__all__ = ["Result", "simulate"]


class Result(NamedTuple):
    """What a run produced.

    Attributes
    ----------
    times : ndarray, shape (T,)
        Snapshot times t = step * dt.
    steps : ndarray, shape (T,)
        Snapshot step numbers.
    theta : ndarray, shape (T, m, p)
        Particle snapshots (``keep_particles=False``: shape (0, m, p)).
    observables : dict of str to ndarray
        Each observable's values at the snapshots, shape (T, ...).
    state : FlowState
        The final state (the last good one after a divergence).
    status : str
        ``"completed"``, ``"diverged"`` or ``"interrupted"``.
    """

    times: np.ndarray
    steps: np.ndarray
    theta: np.ndarray
    observables: dict
    state: FlowState
    status: str


def _n_steps(flow, t_end, n_steps):
    if (t_end is None) == (n_steps is None):
        raise ConfigError("t_end", t_end, "exactly one of t_end or n_steps")
    if n_steps is None:
        try:
            t = float(t_end)
        except (TypeError, ValueError):
            t = float("nan")
        if not math.isfinite(t) or t < 0:
            raise ConfigError("t_end", t_end, "a finite time >= 0")
        return int(round(t / flow.dynamics.dt))
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 0:
        raise ConfigError("n_steps", n_steps, "a non-negative integer")
    return int(n_steps)


def simulate(flow: Flow, start, *, t_end=None, n_steps=None, snapshot_every: int = 1, observers=None,
             recorder=None, keep_particles: bool = True, progress=None, label: str = "") -> Result:
    """Run ``flow`` from ``start`` for a time span, with a snapshot every ``snapshot_every`` steps.

    Parameters
    ----------
    flow : Flow
        From :func:`~meanfield.flow.particle_flow` or another flow constructor.
    start : ndarray, shape (m, p), or FlowState
        Initial particles (step 0), or a state to continue from (its step counter is kept).
    t_end : float, optional
        Run until time ``t_end`` (rounded to a whole number of steps). Give this or ``n_steps``.
    n_steps : int, optional
        Number of steps to run from ``start``.
    snapshot_every : int
        Steps between snapshots; the last snapshot is at the end even if the count does not divide.
    observers : dict of str to callable, optional
        ``name -> obs(state)``; default ``flow.observers`` or :func:`~meanfield.observers.default_observers`,
        measured against the particles of ``start``.
    recorder : object, optional
        Receives ``begin(flow, state)``, ``append(state, values)`` after every snapshot, and
        ``close(status)``; see :mod:`meanfield.h5md`.
    keep_particles : bool
        Keep particle snapshots in memory in the result.
    progress : bool, optional
        Show a progress bar; default: only when standard error is a terminal.
    label : str
        Text in front of the progress bar.

    Returns
    -------
    Result

    Raises
    ------
    DivergenceError
        With ``.result`` holding the snapshots up to the last good state.
    """
    total = _n_steps(flow, t_end, n_steps)
    if isinstance(snapshot_every, bool) or not isinstance(snapshot_every, (int, np.integer)) or snapshot_every <= 0:
        raise ConfigError("snapshot_every", snapshot_every, "a positive integer")
    state = start if isinstance(start, FlowState) else flow.init(start)
    if observers is None:
        observers = (flow.observers or default_observers)(flow, state.theta)
    if progress is None:
        progress = sys.stderr.isatty()
    times, steps, thetas, values = [], [], [], {name: [] for name in observers}

    def snapshot(s):
        vals = {name: obs(s) for name, obs in observers.items()}
        times.append(s.t)
        steps.append(s.step)
        if keep_particles:
            thetas.append(s.theta.copy())
        for name, v in vals.items():
            values[name].append(v)
        if recorder is not None:
            recorder.append(s, vals)

    def result(s, status):
        m, p = s.theta.shape
        theta = np.stack(thetas) if thetas else np.empty((0, m, p), dtype=s.theta.dtype)
        obs = {name: np.asarray(v) for name, v in values.items()}
        return Result(np.asarray(times, dtype=float), np.asarray(steps, dtype=np.int64), theta, obs, s, status)

    if recorder is not None:
        recorder.begin(flow, state)
    status = "interrupted"
    try:
        snapshot(state)
        done = 0
        with tqdm(total=total, disable=not progress, desc=label or None, unit="step", leave=False) as bar:
            while done < total:
                k = min(int(snapshot_every), total - done)
                try:
                    state = flow.advance(state, k)
                except DivergenceError as err:
                    if err.state is not None and err.state.step > steps[-1]:
                        snapshot(err.state)
                    state = err.state if err.state is not None else state
                    status = "diverged"
                    err.result = result(state, status)
                    raise
                done += k
                snapshot(state)
                bar.update(k)
        status = "completed"
    finally:
        if recorder is not None:
            recorder.close(status)
    return result(state, status)
