"""Helper of tests/test_h5md.py, run in a subprocess (NUMBA_NUM_THREADS set by the test).

    python _kill_run.py run PATH VARIANT        fresh run; prints "ready", then each step once its snapshot
                                                is flushed (the parent kills it at a random moment)
    python _kill_run.py short PATH VARIANT      a fresh run of SHORT_STEPS steps, announced the same way (traced by
                                                tests/_replay.py)
    python _kill_run.py extend PATH VARIANT     resume PATH and continue it to 2 x SHORT_STEPS steps, announced
    python _kill_run.py finish VARIANT PATH...  continue each file from its last snapshot to N_STEPS (a fresh
                                                run where no file was left), then write the reference
                                                (uninterrupted) run to PATH.ref for the first one

VARIANT is "full" (float64, all particles, gzip) or "lossy" (float32, a subset of 7 particles, lzf).
"""

import contextlib
import os
import signal
import sys
import time

import meanfield as mf
from meanfield.data import teacher_student
from meanfield.h5md import Recorder
from meanfield.observers import default_observers
from meanfield.run import simulate
from meanfield.trajectory import first_state, last_state

N_STEPS = 300
SHORT_STEPS = 16
EVERY = 2
VARIANTS = {
    "full": dict(particles_dtype="float64", particle_subset=None, compression="gzip"),
    "lossy": dict(particles_dtype="float32", particle_subset=7, compression="lzf"),
}


@contextlib.contextmanager
def handle_sigterm():
    """While active, SIGTERM raises KeyboardInterrupt, so the run stops as on Ctrl-C and its recorder is closed
    with status ``interrupted`` (the plain Python behaviour this helper's parent tests)."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def problem():
    ds = teacher_student(3, 12, 6, k=2, activation="tanh", seed=3)
    model = mf.Model(d=3, m=40, activation="tanh")
    dyn = mf.Dynamics(lr=1.0, dt=0.02, integrator="euler_maruyama", temperature=1e-4, seed=11)
    return ds, mf.particle_flow(ds, model, dyn), mf.init_particles(model, 5)


class Announce:
    """Delegates to a recorder and prints each step once append() has returned (flushed)."""

    def __init__(self, rec):
        self.rec = rec
        self.snapshots = 0

    def begin(self, flow, state):
        self.rec.begin(flow, state)

    def append(self, state, values, descriptions=None):
        self.rec.append(state, values, descriptions)
        print(state.step, flush=True)
        self.snapshots += 1
        # MEANFIELD_TEST_HOLD_AFTER=k: after k snapshots the run waits (up to 120 s) for a signal, so that a test
        # that signals the process after reading the file never races against the run finishing.
        hold = int(os.environ.get("MEANFIELD_TEST_HOLD_AFTER", "0"))
        if hold and self.snapshots >= hold:
            time.sleep(120)
        # MEANFIELD_TEST_PACE (seconds per snapshot) sets a floor on the run's duration, so that kill moments
        # drawn in a fixed window land inside the run however fast the machine is.
        time.sleep(float(os.environ.get("MEANFIELD_TEST_PACE", "0")))

    def close(self, status):
        self.rec.close(status)


def fresh(path, variant, announce=False, n_steps=N_STEPS):
    ds, flow, theta0 = problem()
    rec = Recorder(path, config={"variant": variant, "n_steps": N_STEPS}, data=ds, seed=5, **VARIANTS[variant]).sink()
    if announce:  # compile / load every kernel first, so the kill moments fall into the run itself
        for obs in default_observers(flow, theta0):
            obs(flow.advance(flow.init(theta0), 1))
        print("ready", flush=True)
        rec = Announce(rec)
    with handle_sigterm():
        simulate(flow, theta0, n_steps=n_steps, snapshot_every=EVERY, recorder=rec)


def finish(path, variant, n_total=N_STEPS, announce=False):
    if not os.path.exists(path):
        return fresh(path, variant)
    ds, flow, _ = problem()
    state = last_state(path)
    observers = default_observers(flow, first_state(path).theta)
    if announce:  # compile first, so that the trace is the recorder's work
        for obs in observers:
            obs(flow.advance(state, 1))
        print("ready", flush=True)
    rec = Recorder(path, data=ds, seed=5, resume=True, **VARIANTS[variant]).sink()
    simulate(flow, state, n_steps=n_total - state.step, snapshot_every=EVERY, observers=observers,
             recorder=Announce(rec) if announce else rec)


if __name__ == "__main__":
    if sys.argv[1] == "run":
        fresh(sys.argv[2], sys.argv[3], announce=True)
    elif sys.argv[1] == "short":
        fresh(sys.argv[2], sys.argv[3], announce=True, n_steps=SHORT_STEPS)
    elif sys.argv[1] == "extend":
        finish(sys.argv[2], sys.argv[3], n_total=2 * SHORT_STEPS, announce=True)
    else:
        variant, paths = sys.argv[2], sys.argv[3:]
        for p in paths:
            finish(p, variant)
        fresh(paths[0] + ".ref", variant)
