"""
Rich vs lazy on real data: digit parity
=======================================

A two-layer relu network learns the parity (even/odd) of the UCI handwritten digits shipped with meanfield
(1 797 images of 8x8 pixels, d = 64; data/README.md). The same initial particles are trained under the
``mean_field`` and ``ntk`` scalings with gradient flow (Heun); we report train/test risk and the test accuracy
of sign(f), and how far the particles moved.

Run ``python examples/plot_digits.py`` (``MEANFIELD_QUICK=1`` for a small, fast version); the figure is
written to ``results/examples/digits.png``.
"""

# %%
import os
from pathlib import Path

import numpy as np

import meanfield as mf
from meanfield.data import load_digits
from meanfield.figures._style import COLORS, LABELS, figure, finish
from meanfield.run import simulate

QUICK = bool(int(os.environ.get("MEANFIELD_QUICK", "0")))
m, t_end = (64, 2.0) if QUICK else (512, 60.0)

data = load_digits(target="parity", n_test=597, seed=0)
print(f"digits: {data.X.shape[0]} training and {data.X_test.shape[0]} test images, d = {data.X.shape[1]}")

# %%
# One initialisation, two scalings.
theta0 = mf.init_particles(mf.Model(d=64, m=m, symmetric=True), 0)
dyn = mf.Dynamics(lr=1.0, dt=0.2, integrator="heun")
results, accuracy = {}, {}
for scaling in ("mean_field", "ntk"):
    model = mf.Model(d=64, m=m, activation="relu", scaling=scaling, symmetric=True)
    flow = mf.particle_flow(data, model, dyn)
    res = simulate(flow, theta0, t_end=t_end, snapshot_every=10)
    f_test = mf.outputs(res.state.theta, data.X_test, model)
    acc = float(np.mean(np.sign(f_test) == data.y_test))
    results[scaling] = res
    accuracy[scaling] = acc
    print(f"{scaling:>10}: train risk {res.observables['train_loss'][-1]:.4f}, test risk "
          f"{res.observables['test_loss'][-1]:.4f}, test accuracy {acc:.3f}, relative displacement "
          f"{res.observables['displacement'][-1]:.3g}")

# %%
# Risk and displacement against time.
fig, (ax1, ax2) = figure(2)
for scaling, res in results.items():
    ax1.plot(res.times[1:], res.observables["train_loss"][1:], color=COLORS[scaling], label=f"{LABELS[scaling]}: train")
    ax1.plot(res.times[1:], res.observables["test_loss"][1:], color=COLORS[scaling], ls="--",
             label=f"{LABELS[scaling]}: test")
    ax2.plot(res.times[1:], res.observables["displacement"][1:], color=COLORS[scaling], label=LABELS[scaling])
ax1.set(xscale="log", yscale="log", xlabel="time t (units of 1/lr)", ylabel=r"risk $\frac{1}{2n}\sum_i (f(x_i)-y_i)^2$",
        title=f"digit parity, m = {m}; test accuracy " + ", ".join(f"{s}: {a:.3f}" for s, a in accuracy.items()))
ax2.set(xscale="log", yscale="log", xlabel="time t (units of 1/lr)",
        ylabel=r"relative displacement $\|\theta_t-\theta_0\|_F/\|\theta_0\|_F$", title="how far the particles move")
for ax in (ax1, ax2):
    finish(ax)
out = Path("results/examples")
out.mkdir(parents=True, exist_ok=True)
fig.savefig(out / "digits.png", dpi=110)
print(f"figure -> {out / 'digits.png'}")
