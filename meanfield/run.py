"""Runs: one flow with :func:`simulate`, one configured run with :func:`run_config`.

:func:`simulate` is the loop of a single flow: it advances a :class:`~meanfield.flow.Flow` by ``snapshot_every``
steps at a time inside compiled code, evaluates the observers at every snapshot (the initial state included),
hands each snapshot to an optional recorder sink, shows a progress bar on a terminal, and returns a
:class:`Result`. On divergence the snapshots up to the last good state are kept and the sink is closed with
status ``diverged``; on an interruption it is closed with status ``interrupted``.

:func:`run_config` owns a configured run (docs/config.md), which is what the command line and a sweep's
workers call: it builds the data and the initial particles once, then for each preset of ``run.scalings`` the
model, the flows (the network, and its linearisation beside it for ``dynamics.kind = "linearized"``), their
observers, the recorder and the simulation, one HDF5 file per preset; then the summary and the figure. Every
object is built before the output folder is created, so a configuration that cannot run writes nothing.

>>> import meanfield as mf
>>> data = mf.teacher_student(d=3, n_train=16, k=2, seed=0)
>>> model = mf.Model(d=3, m=8)
>>> flow = mf.particle_flow(data, model, mf.Dynamics(dt=0.1))
>>> res = simulate(flow, mf.init_particles(model, 0), n_steps=20, snapshot_every=10)
>>> res.steps.tolist(), res.status
([0, 10, 20], 'completed')
>>> bool(res.observables["train_loss"][-1] < res.observables["train_loss"][0])
True
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import interrupt
from .errors import ConfigError, DivergenceError, FileFormatError
from .flow import Flow, FlowState
from .validate import check_int, check_number

__all__ = ["Result", "simulate", "steps_for", "FlowRun", "RunResult", "run_config", "build", "Plan", "simulate_pde",
           "pde_observers"]


class Result(NamedTuple):
    """What a run of one flow produced.

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


def steps_for(t_end, dt) -> int:
    """The number of steps of size ``dt`` that reach time ``t_end`` (rounded to the nearest whole step)."""
    t = check_number("t_end", t_end, low=0, allowed="a finite time >= 0")
    return int(round(t / dt))


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
        Run for this much time from ``start`` (rounded to a whole number of steps). Give this or ``n_steps``.
    n_steps : int, optional
        Number of steps to run from ``start``.
    snapshot_every : int
        Steps between snapshots; the last snapshot is at the end even if the count does not divide.
    observers : list of Observer, optional
        Default :func:`meanfield.observers.default_observers` of the flow, measured against the particles of
        ``start``.
    recorder : sink, optional
        Receives ``begin(flow, state)``, ``append(state, values, descriptions)`` after every snapshot (values
        and the description of the observer of each), and ``close(status)``: a
        :meth:`meanfield.h5md.Recorder.sink`.
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
    meanfield.interrupt.Interrupted
        When SIGINT or SIGTERM arrived inside :func:`meanfield.interrupt.deferred` (after the snapshot in
        progress was recorded).
    """
    from tqdm.auto import tqdm

    from .observers import default_observers

    if (t_end is None) == (n_steps is None):
        raise ConfigError("t_end", t_end, "exactly one of t_end or n_steps")
    total = steps_for(t_end, flow.dynamics.dt) if n_steps is None else check_int("n_steps", n_steps, low=0)
    every = check_int("snapshot_every", snapshot_every, low=1)
    state = start if isinstance(start, FlowState) else flow.init(start)
    if observers is None:
        observers = default_observers(flow, state.theta)
    if progress is None:
        progress = sys.stderr.isatty()
    times, steps, thetas, values = [], [], [], {}

    def snapshot(s):
        vals, described = {}, {}
        for obs in observers:
            got = obs(s)
            vals.update(got)
            described.update(dict.fromkeys(got, obs.description))
        times.append(s.t)
        steps.append(s.step)
        if keep_particles:
            thetas.append(s.theta.copy())
        for name, v in vals.items():
            values.setdefault(name, []).append(v)
        if recorder is not None:
            recorder.append(s, vals, described)

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
        interrupt.check()
        done = 0
        with tqdm(total=total, disable=not progress, desc=label or None, unit="step", leave=False) as bar:
            while done < total:
                k = min(every, total - done)
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
                interrupt.check()
        status = "completed"
    finally:
        if recorder is not None:
            recorder.close(status)
    return result(state, status)


# ---------------------------------------------------------------------------------------------------------------
# configured runs
# ---------------------------------------------------------------------------------------------------------------


class Plan(NamedTuple):
    """Everything a configured run needs, built in memory before anything is written.

    Attributes
    ----------
    config : RunConfig
    problem : Dataset or ndarray
        The data set, or the teacher rows (k, d + 1 or d + 2) of a Gaussian-teacher problem (``dynamics.kind =
        "pde"``: the data set, or None on the Gaussian population).
    theta0 : ndarray, shape (m, p), or DensityState
        The initial particles, shared by every preset (``dynamics.kind = "pde"``: the initial
        :class:`~meanfield.pde.DensityState`).
    flows : dict
        ``preset -> {flow name -> Flow}``: ``"neurons"`` (the network) and, for ``dynamics.kind =
        "linearized"``, ``"linearized"`` beside it; ``dynamics.kind = "pde"``: ``{"pde": {"density": PDEFlow}}``.
    """

    config: object
    problem: object
    theta0: np.ndarray
    flows: dict


def _data_error(err: ConfigError) -> ConfigError:
    key = err.key if err.key.startswith("data.") else "data." + err.key
    return ConfigError(key, err.value, err.allowed)


def _build_problem(cfg):
    from . import data as _data

    spec = {k: v for k, v in cfg.data.items() if k != "kind"}
    kind = cfg.data["kind"]
    try:
        if kind == "teacher_student":
            return _data.teacher_student(**spec)
        if kind == "digits":
            return _data.load_digits(**{**spec, "target": tuple(spec["target"]) if isinstance(spec.get("target"), list)
                                        else spec.get("target", "parity")})
        if kind == "npz":
            return _data.load_npz(**spec)
        if kind == "csv":
            return _data.load_csv(**spec)
        if "teacher_file" in spec:
            return _load_teacher(spec["teacher_file"], spec["teacher_key"])
        return _data.random_teacher(spec["d"], spec["k"], bias=spec["bias"], seed=spec["seed"])
    except ConfigError as err:
        raise _data_error(err) from None


def _load_teacher(path, key):
    try:
        with np.load(path) as z:
            T = np.asarray(z[key], dtype=np.float64)
    except (OSError, ValueError, KeyError) as exc:
        raise FileFormatError(path, f"cannot read the teacher array {key!r} ({exc})") from None
    if not np.all(np.isfinite(T)):
        raise FileFormatError(path, f"teacher {key!r} has NaN or inf entries; expected finite numbers")
    return T


def build(cfg) -> Plan:
    """Build the data (once), the initial particles (once) and every flow of a configuration, in memory.

    Parameters
    ----------
    cfg : RunConfig

    Returns
    -------
    Plan
    """
    from .flow import Dynamics, particle_flow
    from .linearized import linearized_flow
    from .model import Model, init_particles
    from .population import online_flow, population_flow

    if cfg.dynamics["kind"] == "pde":
        return _build_pde(cfg)
    problem = _build_problem(cfg)
    gaussian = cfg.data["kind"] == "gaussian_teacher"
    d = problem.shape[1] - 1 - int(cfg.data["bias"]) if gaussian else problem.X.shape[1]
    dynamics = Dynamics(**cfg.dynamics_kwargs())
    kind = cfg.dynamics["kind"]
    theta0, flows = None, {}
    for scaling in cfg.run["scalings"]:
        model = Model(d=d, **cfg.model_kwargs(scaling))
        if theta0 is None:
            theta0 = init_particles(model, cfg.model["seed"])  # one initialisation shared by every preset
        if kind == "particle":
            flows[scaling] = {"neurons": particle_flow(problem, model, dynamics)}
        elif kind == "linearized":
            flows[scaling] = {"neurons": particle_flow(problem, model, dynamics),
                              "linearized": linearized_flow(problem, model, dynamics, theta0)}
        elif kind == "population":
            flows[scaling] = {"neurons": population_flow(problem, model, dynamics)}
        else:
            flows[scaling] = {"neurons": online_flow(problem, model, dynamics)}
    return Plan(cfg, problem, theta0, flows)


def _build_pde(cfg) -> Plan:
    """The PDE of a configuration (``dynamics.kind = "pde"``): problem, grid, flow and initial state, in memory.
    The initial law must fit on the grid (its mass off the grid at most ``pde.tolerance``)."""
    from . import pde
    from .data import random_teacher
    from .model import Model

    p, data = cfg.pde, cfg.data
    act = cfg.model["activation"]
    gaussian = data["kind"] == "gaussian_teacher"
    dataset = None if gaussian else _build_problem(cfg)
    if gaussian:
        if "teacher" in data:
            teacher = np.asarray(data["teacher"], dtype=np.float64)
        elif "teacher_file" in data:
            teacher = _load_teacher(data["teacher_file"], data["teacher_key"])
        else:
            teacher = random_teacher(data["d"], data["k"], bias=False, seed=data["seed"])
    else:
        t = dataset.teacher
        teacher = None if t is None or np.ndim(t) != 2 or np.shape(t)[1] != 2 else np.asarray(t, dtype=np.float64)
    d = data.get("d", 1)
    initial = Model(d=1 if p["setting"] == "plane" else d, m=1, activation=act, sigma_a=cfg.model["sigma_a"],
                    sigma_w=cfg.model["sigma_w"])
    try:
        if p["setting"] == "plane":
            problem = pde.plane_problem(dataset, teacher=teacher, activation=act,
                                        **({"quad_points": p["quad_points"]} if gaussian else {}))
        else:
            problem = pde.radial_problem(d, teacher, activation=act, a0=p["a0"], radial_points=p["radial_points"],
                                         angular_points=p["angular_points"])
    except ConfigError as err:
        key = err.key if "." in err.key else ("data." if err.key in ("teacher", "data", "d") else "pde.") + err.key
        raise ConfigError(key, err.value, err.allowed) from None
    cells = tuple(p["cells"]) if isinstance(p["cells"], list) else p["cells"]
    extent = tuple(p["extent"]) if isinstance(p.get("extent"), list) else p.get("extent")
    grid = pde.make_grid(problem, cells, initial=initial, tolerance=p["tolerance"], margin=p["margin"],
                         extent=extent)
    dyn = cfg.dynamics
    params = pde.PDEParams(lr=dyn["lr"], layer_lr=tuple(dyn["layer_lr"][:2]), weight_decay=dyn["weight_decay"],
                           temperature=dyn["temperature"], order=p["order"], cfl=p["cfl"], dt_max=p.get("dt_max"))
    flow = pde.pde_flow(problem, grid, params, tolerance=p["tolerance"])
    state0 = flow.init(initial)
    if state0.outflow > p["tolerance"]:
        raise ConfigError("pde.extent", [list(grid.lower), list(grid.upper)],
                          f"a grid holding the initial law: {state0.outflow:.3g} of its mass is off the grid, "
                          f"above pde.tolerance = {p['tolerance']:g}")
    return Plan(cfg, dataset, state0, {"pde": {"density": flow}})


def pde_observers(flow) -> list:
    """The observers a PDE run records: :func:`meanfield.pde.pde_observers` as :class:`~meanfield.observers.Observer`
    objects with their descriptions (risk, mass and outflow, moments, mass near the teacher)."""
    from .observers import Observer
    from .pde import pde_observers as _obs

    described = {
        "risk": "risk R(mu_t) of the density (cell-centre rule in theta, the problem's rule in x)",
        "mass": "mass on the grid (mass) and off it (outflow: initial tails + what left); mass + outflow = 1",
        "moments": "raw moments of the density by the midpoint rule (plane: mean_a, mean_w, m2_a, m2_w, m_aw; "
                   "radial: mean_s, m2_s)",
        "mass_near_teacher": "mass within 0.25 of a teacher point (a*, w*) (plane) or 0.1 of a ring radius s* "
                             "(radial)",
    }
    return [Observer(name, described[name], fn) for name, fn in _obs(flow).items()]


def simulate_pde(flow, start, times, *, observers=None, sink=None, density_every: int = 1, first_index: int = 0,
                 progress=None, label: str = ""):
    """Run a PDE flow through snapshot ``times``, landing on each with ``advance_to``.

    Parameters
    ----------
    flow : meanfield.pde.PDEFlow
    start : DensityState
        The state at ``times[0]`` (recorded as the first snapshot; a resumed run starts at a recorded one).
    times : ndarray, shape (K,)
        Increasing snapshot times, ``times[0] == start.t``.
    observers : list of Observer, optional
        Default :func:`pde_observers`.
    sink : FieldSink, optional
        :meth:`meanfield.h5md.Recorder.field_sink`: receives every snapshot's observables, and the density at
        snapshots whose global index ``first_index + k`` is a multiple of ``density_every`` and at the last.
    density_every : int
    first_index : int
        Global index of ``times[0]`` among the run's snapshots.

    Returns
    -------
    (DensityState, str)
        The final state and the status ``"completed"``.

    Raises
    ------
    meanfield.pde.OutflowError
        More mass than ``pde.tolerance`` left the grid (the sink is closed ``interrupted``).
    meanfield.interrupt.Interrupted
        After the snapshot in progress was recorded.
    """
    from tqdm.auto import tqdm

    observers = pde_observers(flow) if observers is None else observers
    if progress is None:
        progress = sys.stderr.isatty()
    last = len(times) - 1

    def snapshot(s, k):
        vals, described = {}, {}
        for obs in observers:
            got = obs(s)
            vals.update(got)
            described.update(dict.fromkeys(got, obs.description))
        if sink is not None:
            sink.append(s, vals, described, field=((first_index + k) % density_every == 0 or k == last))

    state = start
    if sink is not None:
        sink.begin(flow, state)
    status = "interrupted"
    try:
        snapshot(state, 0)
        interrupt.check()
        with tqdm(total=float(times[-1] - times[0]), disable=not progress, desc=label or None, leave=False) as bar:
            for k in range(1, len(times)):
                state = flow.advance_to(state, float(times[k]))
                snapshot(state, k)
                bar.update(float(times[k] - times[k - 1]))
                interrupt.check()
        status = "completed"
    finally:
        if sink is not None:
            sink.close(status)
    return state, status


def _last_density(path):
    """The last recorded density snapshot of a PDE file as a DensityState (outflow from the observable
    ``outflow`` at the same step), and its time; None when the file has none."""
    from .pde import DensityState
    from .trajectory import load

    with load(path) as tr:
        if "density" not in tr.fields or not len(tr.field("density")):
            return None
        fd = tr.field("density")
        step, t = int(fd.steps[-1]), float(fd.times[-1])
        out = tr.observables.get("outflow")
        hit = np.flatnonzero(out.step == step) if out is not None else np.empty(0)
        if not hit.size:
            return None
        return DensityState(step, t, np.ascontiguousarray(fd[-1]), float(np.asarray(out.value)[hit[0]]))


def _final_pde(path) -> dict:
    from .trajectory import load

    with load(path) as tr:
        out = {key: float(np.asarray(s.value[-1])) for key, s in tr.observables.items()
               if len(s.step) and np.asarray(s.value).ndim == 1}
        out["t"] = float(tr.times[-1]) if len(tr.times) else math.nan
    return out


def _run_pde_file(plan, path, resume, progress, log) -> list:
    """Record the PDE of a plan into ``path`` (``--resume``: from its last density snapshot, else afresh)."""
    from .h5md import Recorder
    from .pde import OutflowError
    from .trajectory import load

    cfg = plan.config
    flow = plan.flows["pde"]["density"]
    times = cfg.snapshot_times
    start, first = plan.theta0, 0
    cont = False
    if resume and path.exists():
        _same_setup(path, cfg)
        with load(path) as tr:
            done = tr.status == "completed" and len(tr.times) and tr.times[-1] >= times[-1]
        if done:
            return [FlowRun("pde", "density", path, "skipped", 0, 0.0, _final_pde(path))]
        last = _last_density(path)
        if last is not None:
            hit = np.flatnonzero(times == last.t)
            if hit.size:  # continue from that snapshot; otherwise (times changed) start afresh
                start, first, cont = last, int(hit[0]), True
    rec = Recorder(path, config=cfg.to_dict(), data=plan.problem, compression=cfg.output["compression"],
                   resume=cont)
    t0 = time.perf_counter()
    message = ""
    try:
        state, status = simulate_pde(flow, start, times[first:], sink=rec.field_sink("density"),
                                     density_every=cfg.pde["density_every"], first_index=first,
                                     progress=progress, label="pde")
    except OutflowError as err:
        raise ConfigError(err.key, err.value, err.allowed + f" (raise pde.extent or pde.tolerance; the snapshots "
                                                            f"before are in {path})") from None
    finally:
        rec.close()
    run = FlowRun("pde", "density", path, status, int(state.step - start.step), time.perf_counter() - t0,
                  _final_pde(path), message)
    if log is not None:
        log(f"pde: {run.steps} steps to t = {state.t:g} in {run.seconds:.1f} s -> {path}")
    return [run]


class FlowRun(NamedTuple):
    """One flow of a configured run, as it ended.

    Attributes
    ----------
    scaling, flow : str
        The preset and the flow name (``"neurons"`` or ``"linearized"``).
    path : Path
        Its HDF5 file.
    status : str
        ``completed``, ``diverged``, ``interrupted``, or ``skipped`` (already complete in the file: ``--resume``).
    steps : int
        Steps run by this call.
    seconds : float
        Wall time of this call.
    final : dict
        The last value of every scalar observable, and ``t``.
    message : str
        What went wrong, for a diverged flow.
    """

    scaling: str
    flow: str
    path: Path
    status: str
    steps: int
    seconds: float
    final: dict
    message: str = ""


class RunResult(NamedTuple):
    """What :func:`run_config` produced: every flow, and the files of the run."""

    config: object
    out: Path
    runs: list
    summary: Path
    figure: Path | None

    @property
    def ok(self) -> bool:
        """Whether every flow completed."""
        return all(r.status in ("completed", "skipped") for r in self.runs)

    def table(self) -> str:
        """A text table of the final values (what ``meanfield run`` prints)."""
        names = [n for n in ("train_loss", "test_loss", "population_risk", "displacement", "w2_to_init",
                             "kernel_change", "risk", "outflow", "mass_near_teacher") if any(n in r.final for r in self.runs)]
        rows = [f"{'run':<22}{'t':>8}" + "".join(f"{n:>18}" if len(n) > 15 else f"{n:>16}" for n in names)
                + f"{'status':>12}"]
        for r in self.runs:
            label = _label(r)
            rows.append(f"{label:<22}{r.final.get('t', math.nan):>8g}"
                        + "".join(f"{r.final.get(n, math.nan):>16.4g}" for n in names) + f"{r.status:>12}")
        return "\n".join(rows)


def _label(r) -> str:
    """A flow's name in the summary: the preset, ``preset/flow`` for a second flow, ``pde`` for a PDE run."""
    return r.scaling if r.flow in ("neurons", "density") else f"{r.scaling}/{r.flow}"


def _same_setup(path, cfg):
    """Refuse to resume a file written from another data set, model, dynamics or observers."""
    from .trajectory import load

    with load(path) as tr:
        old = tr.config or {}
    for table in ("data", "model", "dynamics", "observers") + (("pde",) if cfg.pde else ()):
        if table in old and old[table] != json.loads(json.dumps(getattr(cfg, table))):
            changed = sorted(k for k in set(old[table]) | set(getattr(cfg, table))
                             if old[table].get(k) != getattr(cfg, table).get(k))
            key = f"{table}.{changed[0]}" if changed else table
            raise ConfigError(key, getattr(cfg, table).get(changed[0]) if changed else None,
                              f"the value {path} was written with, to --resume it (or run without --resume)")


def _done(path, name, total):
    """Whether flow ``name`` of the file at ``path`` is finished (completed to ``total`` steps, or diverged)."""
    from .trajectory import load

    with load(path) as tr:
        if name not in tr.flows:
            return False
        fl = tr.flow(name)
        return fl.status == "diverged" or (fl.status == "completed" and len(fl.steps) and fl.steps[-1] >= total)


def _final(path, name) -> dict:
    from .trajectory import load

    with load(path) as tr:
        fl = tr.flow(name)
        out = {key: float(np.asarray(s.value[-1])) for key, s in fl.observables.items()
               if len(s.step) and np.asarray(s.value).ndim == 1}
        out["t"] = float(fl.times[-1]) if len(fl.times) else math.nan
    return out


def run_config(config, out=None, *, resume: bool = False, progress=None, log=None) -> RunResult:
    """Run a configuration: one HDF5 file per preset of ``run.scalings``, a summary, a figure.

    Parameters
    ----------
    config : RunConfig, str or os.PathLike
        A validated configuration, or the path of a TOML file (:func:`meanfield.config.load`).
    out : str or os.PathLike, optional
        Output folder (default ``output.dir``); created only once every object of the run is built.
    resume : bool
        Continue the flows of existing files from their last snapshot and skip finished ones (a file written
        from another data set, model, dynamics or observers is refused).
    progress : bool, optional
        Progress bars; default: only on a terminal.
    log : callable, optional
        Receives one line per finished flow (the command line passes ``print``).

    Returns
    -------
    RunResult
        Every flow with its status; ``summary`` is ``<name>_summary.json``, ``figure`` ``<name>.png`` (or None).

    Notes
    -----
    Files: ``<name>_<preset>.h5`` (docs/hdf5-format.md), where ``<name>`` is the configuration file's stem. A
    diverged flow is recorded with status ``diverged`` and the other flows still run. SIGINT and SIGTERM inside
    :func:`meanfield.interrupt.deferred` stop the run after the snapshot in progress
    (:class:`~meanfield.interrupt.Interrupted`); ``resume=True`` continues it.
    """
    from .config import RunConfig, load

    cfg = config if isinstance(config, RunConfig) else load(config)
    plan = build(cfg)
    interrupt.check()
    out = Path(out if out is not None else cfg.output["dir"])
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError("output.dir", str(out), f"a folder that can be created ({exc.strerror})") from None
    runs = []
    pde = cfg.dynamics["kind"] == "pde"
    for scaling, flows in plan.flows.items():
        path = out / f"{cfg.name}_{scaling}.h5"
        if pde:
            runs += _run_pde_file(plan, path, resume, progress, log)
        else:
            runs += _run_file(plan, scaling, flows, path, resume, progress, log)
    summary = out / f"{cfg.name}_summary.json"
    table = {_label(r): {**r.final, "status": r.status} for r in runs}
    summary.write_text(json.dumps(table, indent=2) + "\n")
    figure = None
    if cfg.output["figure"]:
        figure = out / f"{cfg.name}.png"
        (_pde_figure if pde else _figure)(plan, runs, figure)
        interrupt.check()
    return RunResult(cfg, out, runs, summary, figure)


def _run_file(plan, scaling, flows, path, resume, progress, log) -> list:
    from .h5md import Recorder
    from .observers import default_observers
    from .trajectory import last_state

    cfg = plan.config
    total = cfg.total_steps
    if resume and path.exists():
        _same_setup(path, cfg)
        if all(_done(path, name, total) for name in flows):
            return [FlowRun(scaling, name, path, "skipped", 0, 0.0, _final(path, name)) for name in flows]
    cont = resume and path.exists()
    starts = {}  # where each flow starts; read before the recorder opens the file for writing
    for name in flows:
        if cont and _done(path, name, total):
            starts[name] = None
            continue
        starts[name] = plan.theta0
        if cont:
            try:
                starts[name] = last_state(path, name)
            except FileFormatError:  # this flow has no snapshot yet: start it afresh
                pass
    finals = {name: _final(path, name) for name, start in starts.items() if start is None}
    out = cfg.output
    rec = Recorder(path, config=cfg.to_dict(), data=plan.problem if cfg.data["kind"] != "gaussian_teacher" else None,
                   seed=cfg.model["seed"], compression=out["compression"], particles_dtype=out["particles_dtype"],
                   particle_subset=out.get("particle_subset"), resume=cont)
    runs = []
    try:
        for name, flow in flows.items():
            start = starts[name]
            if start is None:
                runs.append(FlowRun(scaling, name, path, "skipped", 0, 0.0, finals[name]))
                continue
            begun = start.step if isinstance(start, FlowState) else 0
            observers = default_observers(flow, plan.theta0, record=cfg.observers["record"],
                                          w2_method=cfg.observers["w2_method"],
                                          kernel_points=cfg.observers["kernel_points"], seed=cfg.observers["seed"])
            label = scaling if name == "neurons" else f"{scaling}/{name}"
            t0 = time.perf_counter()
            message = ""
            try:
                res = simulate(flow, start, n_steps=total - begun, snapshot_every=cfg.run["snapshot_every"],
                               observers=observers, recorder=rec.sink(name), keep_particles=False,
                               progress=progress, label=label)
                status = res.status
            except DivergenceError as err:
                status, message = "diverged", str(err)
            run = FlowRun(scaling, name, path, status, total - begun, time.perf_counter() - t0, {}, message)
            runs.append(run)
            if log is not None:
                log(f"{label}: {run.steps} steps in {run.seconds:.1f} s -> {path}" if status == "completed"
                    else f"{label}: {message}; snapshots up to the last good state are in {path}")
    finally:
        rec.close()
    return [r._replace(final=_final(path, r.flow)) if r.status != "skipped" else r for r in runs]


def _figure(plan, runs, path):
    from .figures import rich_lazy
    from .trajectory import load

    cfg = plan.config
    views = {}
    for r in runs:
        with load(r.path) as tr:
            fl = tr.flow(r.flow)
            obs = {key: np.asarray(s.value) for key, s in fl.observables.items()}
            views[r.scaling if r.flow == "neurons" else f"{r.scaling}/{r.flow}"] = rich_lazy.RunView(
                np.asarray(fl.times), obs, plan.theta0, fl.last_state().theta, int(fl.model["d"]))
    gaussian = cfg.data["kind"] == "gaussian_teacher"
    teacher = plan.problem if gaussian else plan.problem.teacher
    d = next(iter(views.values())).d
    where = "Gaussian inputs" if gaussian else f"n = {plan.problem.X.shape[0]}"
    dyn = cfg.dynamics
    rich_lazy.plot(views, path, teacher=teacher,
                   title=f"{cfg.name}: {dyn['kind']} flow, m = {plan.theta0.shape[0]}, d = {d}, {where}, "
                         f"{cfg.model['activation']}, {dyn['integrator']} dt = {dyn['dt']:g}")


def _pde_figure(plan, runs, path):
    """The figure of a PDE run: the risk against time, and the last density snapshot."""
    import matplotlib.pyplot as plt

    from .figures._style import figure
    from .trajectory import load

    cfg = plan.config
    with load(runs[0].path) as tr:
        risk = tr.observables["risk"]
        fd = tr.field("density")
        rho, t_last = fd[-1], float(fd.times[-1])
        centres = [fd.centres(k) for k in range(len(fd.cells))]
        axes = fd.axes
    fig, (ax0, ax1) = figure(2, width=5.0)
    ax0.semilogy(risk.time, np.maximum(np.asarray(risk.value), 1e-300))
    ax0.set(xlabel="time t", ylabel="risk R(mu_t)", title="risk of the density")
    if len(centres) == 2:
        im = ax1.pcolormesh(centres[1], centres[0], rho, shading="auto", cmap="magma")
        fig.colorbar(im, ax=ax1, label="density")
        ax1.set(xlabel=f"{axes[1]} (input weight)", ylabel=f"{axes[0]} (output weight)")
        teacher = plan.flows["pde"]["density"].problem.teacher
        if teacher is not None:
            ax1.plot(teacher[:, 1], teacher[:, 0], "c+", ms=12, mew=2, label="teacher")
            ax1.legend(loc="upper right")
    else:
        ax1.plot(centres[0], rho)
        for s_star in plan.flows["pde"]["density"].problem.teacher[:, 1]:
            ax1.axvline(s_star, color="C3", ls="--", lw=1)
        ax1.set(xlabel="s = |w| / sqrt(d)", ylabel="density of s")
    ax1.set_title(f"density at t = {t_last:g}")
    fig.suptitle(f"{cfg.name}: mean-field PDE ({cfg.pde['setting']}), {cfg.model['activation']}, "
                 f"{' x '.join(map(str, np.broadcast_to(cfg.pde['cells'], (2 if cfg.pde['setting'] == 'plane' else 1,))))} cells")
    fig.savefig(path, dpi=100)
    plt.close(fig)
