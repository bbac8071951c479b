r"""Figure 9. Mean-field Langevin dynamics: the free energy decreases to the Gibbs measure's (Mei, Montanari &
Nguyen 2018; Chizat 2022; Nitanda, Wu & Suzuki 2022).

**Dynamics, in this library's conventions** (docs/conventions.md, ``mean_field`` preset, :math:`\alpha=\beta=c=1`,
learning rate :math:`\eta = 1`, :math:`D = I`): each particle :math:`\theta_j = (a_j, w_j)` follows

.. math:: d\theta_j = -\big(\nabla_\theta V(\theta_j; \mu^m_t) + \lambda\theta_j\big)\,dt + \sqrt{2\tau}\,dB_j,
   \qquad V(\theta;\mu) = \frac1n\sum_i (f_\mu(x_i) - y_i)\,a\,\sigma(w x_i) = \frac{\delta R}{\delta\mu}(\theta),

(``dynamics.weight_decay`` :math:`= \lambda`, ``dynamics.temperature`` :math:`= \tau`, integrator
``euler_maruyama``: :math:`\theta \leftarrow \theta + dt\,v + \sqrt{2\tau\,dt}\,\xi`). Its law solves
:math:`\partial_t\mu = \nabla\cdot(\mu\nabla V) + \lambda\nabla\cdot(\mu\theta) + \tau\Delta\mu
= \nabla\cdot\big(\mu\,\nabla\tfrac{\delta F}{\delta\mu}\big)`, the Wasserstein gradient flow of the free energy

.. math:: F(\mu) = R(\mu) + \frac\lambda2\int|\theta|^2\,d\mu + \tau\int\mu\log\mu
   = R(\mu) + \frac\lambda2 E_\mu|\theta|^2 - \tau H(\mu),
   \qquad \frac{\delta F}{\delta\mu} = V(\theta;\mu) + \frac\lambda2|\theta|^2 + \tau(\log\mu + 1),

with :math:`R(\mu) = \frac1{2n}\sum_i(f_\mu(x_i) - y_i)^2` and :math:`H` the differential entropy. (With a learning
rate :math:`\eta \ne 1` the same holds for :math:`R + \frac{\lambda}{2\eta}E|\theta|^2 - \frac\tau\eta H` with
mobility :math:`\eta`; this figure uses :math:`\eta = 1`.) Along the flow :math:`dF/dt = -\int|\nabla\delta F/
\delta\mu|^2 d\mu \le 0`; F is strictly convex (R is convex in :math:`\mu`, the entropy term strictly), and its
unique minimiser is the self-consistent **Gibbs measure**

.. math:: \mu^*(\theta) = \frac1Z\exp\Big(-\frac{V(\theta;\mu^*) + \frac\lambda2|\theta|^2}{\tau}\Big).

**Setting**: d = 1 inputs, so :math:`\theta = (a, w)` lives in the plane; an erf teacher of two neurons, n
training points; the student's particles start i.i.d. :math:`a, w \sim N(0, 1)`.

**The Gibbs measure, computed.** Here :math:`V = a\,g(w)` with :math:`g(w) = \frac1n\sum_i r_i\sigma(w x_i)`,
:math:`r_i = f_{\mu}(x_i) - y_i`; the exponent is quadratic in a, so under :math:`\mu^*` the law of a given w is
:math:`N(-g(w)/\lambda,\ \tau/\lambda)` and w has the density
:math:`\rho(w)\propto\exp(-\lambda w^2/(2\tau) + g(w)^2/(2\lambda\tau))`. The fixed point is a fixed point of the
n residuals r only: by convex duality it maximises the concave function
:math:`D(r) = -\tau\log Z(r) - r\cdot y/n - |r|^2/(2n)` (:math:`Z(r)` the normaliser of
:math:`\exp(-(a g_r(w) + \lambda|\theta|^2/2)/\tau)`), whose gradient :math:`(f_{\mu_r} - y - r)/n` vanishes exactly
at the Gibbs fixed point. :func:`gibbs_plane` maximises it by Newton's method (Hessian
:math:`-\mathrm{Cov}_{\mu_r}(a\sigma(wx_i), a\sigma(wx_j))/(n^2\tau) - I/n`, with backtracking) on a 1-D grid in w
(trapezoid rule, spectrally accurate for these smooth, Gaussian-tailed integrands), the a-direction in closed
form; :math:`R(\mu^*)`, :math:`E|\theta|^2`, :math:`H(\mu^*) = H(\rho) + \frac12\log(2\pi e\tau/\lambda)` and
:math:`F(\mu^*)` follow exactly.

**The particles' free energy.** :math:`R` is the recorded ``train_loss``, :math:`E|\theta|^2` the particle mean;
the entropy of the particle measure is estimated by the Kozachenko–Leonenko nearest-neighbour estimator
(:func:`kl_entropy`, k = 1, :mod:`scipy.spatial.cKDTree`):
:math:`\hat H = \psi(m) - \psi(1) + \log\pi + \frac2m\sum_j\log\varepsilon_j` in the plane, :math:`\varepsilon_j`
the distance from :math:`\theta_j` to its nearest other particle. It is consistent; its bias at finite m (of
order :math:`m^{-1/2}` to :math:`m^{-1}` for smooth densities in two dimensions, larger where the density is
curved or concentrated) is **measured** here on exact i.i.d. samples of :math:`\mu^*` of the same size and
printed: the plateau of :math:`\hat F` can sit :math:`\tau\times` that bias away from :math:`F(\mu^*)`.

**Numbers and claims**, for each temperature :math:`\tau` (time averages over the snapshots after the burn-in
``figure.burn_in``):

* ``free_energy_rise``: the largest rise :math:`\max_{s<s'}\hat F(t_{s'}) - \hat F(t_s)` of the estimated free
  energy over the whole run, relative to its total decrease :math:`\hat F(0) - \bar F_{\rm plateau}` (max over
  :math:`\tau`): F decreases, and after the burn-in only fluctuates within the estimator's noise;
* ``free_energy_gap_nats``: :math:`|\bar F_{\rm plateau} - F(\mu^*)|/\tau` (max over :math:`\tau`), the
  distance of the plateau to the Gibbs free energy in units of the entropy term (nats);
* ``marginal_l1``: the L1 distance :math:`\sum_b|\hat p_b - p^*_b|` between the time-averaged histogram of the
  particles' w and the Gibbs marginal :math:`\rho` on the same bins (two tail bins included), max over
  :math:`\tau`, and ``l1_over_iid``: that distance divided by the expected L1 distance of the histogram of
  **one** i.i.d. sample of m points from :math:`\rho`, :math:`\sum_b\sqrt{2p^*_b(1-p^*_b)/(\pi m)}` (the
  :math:`m^{-1/2}` sampling error; time averaging can only bring the particles below it, finite-m and step-size
  biases above it).

Also shown: the split-half floor (half the L1 distance between the histograms of the even- and odd-numbered
particles, the sampling noise actually present after time averaging), and the exact :math:`W_2` (in the plane,
:func:`meanfield.transport.exact`) between a subsample of the last snapshot and the quantised Gibbs measure,
beside the same distance for an exact i.i.d. sample of :math:`\mu^*` of that size (the empirical-measure floor).
"""

from __future__ import annotations

import math

import numpy as np

TITLE = "Mean-field Langevin dynamics"
REFERENCE = ("Mei, Montanari & Nguyen (2018); Chizat (2022), Mean-field Langevin dynamics: exponential convergence "
             "and annealing; Nitanda, Wu & Suzuki (2022), Convex analysis of the mean field Langevin dynamics")

__all__ = ["compute", "plot", "kl_entropy", "gibbs_plane", "sample_gibbs"]


def kl_entropy(points, k: int = 1) -> float:
    r"""Kozachenko–Leonenko estimate of the differential entropy (nats) of the law of ``points``, shape (N, p).

    :math:`\hat H = \psi(N) - \psi(k) + \log c_p + \frac pN\sum_j\log\varepsilon_{j,k}`, with
    :math:`\varepsilon_{j,k}` the distance from point j to its k-th nearest other point and
    :math:`c_p = \pi^{p/2}/\Gamma(1 + p/2)` the volume of the unit ball. Consistent for any density with a finite
    entropy; biased at finite N (tests/test_figure_langevin.py measures it on Gaussians). Duplicate points
    (distance 0) are refused.
    """
    from scipy.spatial import cKDTree
    from scipy.special import digamma, gammaln

    x = np.asarray(points, dtype=float)
    if x.ndim != 2 or x.shape[0] <= k:
        raise ValueError(f"points: an (N, p) array with N > k = {k}")
    n, p = x.shape
    dist, _ = cKDTree(x).query(x, k=k + 1)
    eps = dist[:, k]
    if np.any(eps <= 0):
        raise ValueError("points: duplicate points (a nearest-neighbour distance is 0)")
    log_cp = 0.5 * p * math.log(math.pi) - gammaln(1 + 0.5 * p)
    return float(digamma(n) - digamma(k) + log_cp + p * np.mean(np.log(eps)))


def _sigma_table(activation, w, X):
    from ..activations import get_activation

    act = get_activation(activation)
    if act.name == "erf":
        from scipy.special import erf

        return erf(np.outer(w, X))
    return np.vectorize(act.sigma, otypes=[float])(np.outer(w, X))


def gibbs_plane(X, y, *, tau: float, lam: float, activation="erf", extent=None, cells: int = 4001,
                tol: float = 1e-12, max_iter: int = 100) -> dict:
    r"""The self-consistent Gibbs measure :math:`\mu^* \propto \exp(-(V(\theta;\mu^*) + \lambda|\theta|^2/2)/\tau)`
    of a mean-field network :math:`f_\mu(x) = \int a\sigma(wx)\,d\mu` on the data (X, y), d = 1, no bias (see the
    module docstring: Newton's method on the concave dual in the residuals, a 1-D grid in w, a in closed form).

    Parameters
    ----------
    X : array_like, shape (n,) or (n, 1)
    y : array_like, shape (n,)
    tau, lam : float
        Temperature and weight decay, both > 0 (with a learning rate :math:`\eta \ne 1` pass
        :math:`\tau/\eta` and :math:`\lambda/\eta`).
    activation : str
    extent : float, optional
        Half-width of the w-grid (default: the Gaussian part's 12 standard deviations, widened until the density
        at the ends is below 1e-14 of its maximum).
    cells : int
        Grid points in w.
    tol : float
        Stop when :math:`\max_i|f_{\mu_r}(x_i) - y_i - r_i| <` ``tol``.

    Returns
    -------
    dict
        ``w`` (grid), ``rho`` (density of w), ``a_mean`` (:math:`-g(w)/\lambda`), ``a_var`` (:math:`\tau/\lambda`),
        ``residual`` (r), ``risk``, ``second_moment`` (:math:`E|\theta|^2`), ``entropy`` (:math:`H(\mu^*)`),
        ``free_energy``, ``iterations``, ``gap`` (the final :math:`\max_i|f - y - r|`).
    """
    from scipy.special import logsumexp

    X = np.asarray(X, dtype=float).reshape(-1)
    y = np.asarray(y, dtype=float).reshape(-1)
    n = X.size
    if not (tau > 0 and lam > 0):
        raise ValueError("tau and lam must be > 0")
    W = 12.0 * math.sqrt(tau / lam) + 2.0 if extent is None else float(extent)
    r = np.zeros(n)
    for _ in range(8):  # widen the grid until the density vanishes at its ends
        w = np.linspace(-W, W, int(cells))
        h = w[1] - w[0]
        S = _sigma_table(activation, w, X)

        def parts(r):
            g = S @ r / n
            logp = -lam * w**2 / (2 * tau) + g**2 / (2 * lam * tau)
            lz = logsumexp(logp) + math.log(h)  # log of the w-integral (trapezoid; the ends are ~0)
            return g, logp, lz

        def dual(r):
            return -tau * parts(r)[2] - r @ y / n - r @ r / (2 * n)

        gap = math.inf
        for it in range(max_iter):
            g, logp, lz = parts(r)
            mass = np.exp(logp - lz) * h
            a_mean = -g / lam
            f = (mass * a_mean) @ S
            gap = float(np.max(np.abs(f - y - r)))
            if gap < tol:
                break
            grad = (f - y - r) / n
            M = (mass * (a_mean**2 + tau / lam))[:, None] * S
            C = S.T @ M - np.outer(f, f)
            step = np.linalg.solve(-C / (tau * n * n) - np.eye(n) / n, -grad)
            d0, s = dual(r), 1.0
            while dual(r + s * step) < d0 + 1e-4 * s * (grad @ step) and s > 1e-12:
                s *= 0.5
            r = r + s * step
        g, logp, lz = parts(r)
        if extent is not None or max(logp[0], logp[-1]) - logp.max() < math.log(1e-14):
            break
        W *= 1.5
    log_rho = logp - lz
    rho = np.exp(log_rho)
    a_mean = -g / lam
    f = (rho * h * a_mean) @ S
    risk = 0.5 * float(np.mean((f - y) ** 2))
    second = float(np.sum(rho * (w**2 + a_mean**2 + tau / lam)) * h)
    entropy = float(-np.sum(rho * log_rho) * h + 0.5 * math.log(2 * math.pi * math.e * tau / lam))
    return {"w": w, "rho": rho, "a_mean": a_mean, "a_var": tau / lam, "residual": f - y, "risk": risk,
            "second_moment": second, "entropy": entropy,
            "free_energy": risk + 0.5 * lam * second - tau * entropy, "iterations": it, "gap": gap}


def sample_gibbs(gibbs: dict, size: int, rng) -> np.ndarray:
    """``size`` i.i.d. points (a, w) of the Gibbs measure of :func:`gibbs_plane` (w by inverting the grid's
    piecewise-linear CDF, a given w Gaussian)."""
    rng = np.random.default_rng(rng)
    w, rho = gibbs["w"], gibbs["rho"]
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (rho[1:] + rho[:-1]) * np.diff(w))])
    cdf /= cdf[-1]
    ws = np.interp(rng.random(size), cdf, w)
    am = np.interp(ws, w, gibbs["a_mean"])
    return np.column_stack([am + math.sqrt(gibbs["a_var"]) * rng.standard_normal(size), ws])


def _gibbs_bin_masses(gibbs, edges):
    """Gibbs masses of the bins (-inf, e_0), [e_0, e_1), ..., [e_B, inf) of the w-marginal."""
    w, rho = gibbs["w"], gibbs["rho"]
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (rho[1:] + rho[:-1]) * np.diff(w))])
    cdf /= cdf[-1]
    c = np.interp(edges, w, cdf)
    return np.diff(np.concatenate([[0.0], c, [1.0]]))


def _hist(wvals, edges):
    """Masses of the same bins as :func:`_gibbs_bin_masses` for sample values."""
    idx = np.searchsorted(edges, np.asarray(wvals).ravel(), side="right")
    return np.bincount(idx, minlength=edges.size + 1) / idx.size


def _quantised_gibbs(gibbs, cells_w=100, nodes_a=12):
    """The Gibbs measure as weighted points: w-cells (merged from the grid) times Gauss-Hermite nodes in a."""
    w, rho = gibbs["w"], gibbs["rho"]
    lo, hi = np.interp([1e-6, 1 - 1e-6], *_cdf_pair(gibbs))
    edges = np.linspace(lo, hi, cells_w + 1)
    mass = _gibbs_bin_masses(gibbs, edges)[1:-1]
    centres = 0.5 * (edges[1:] + edges[:-1])
    xa, wa = np.polynomial.hermite_e.hermegauss(nodes_a)
    wa = wa / wa.sum()
    am = np.interp(centres, w, gibbs["a_mean"])
    pts = np.array([[am[i] + math.sqrt(gibbs["a_var"]) * xa[q], centres[i]]
                    for i in range(cells_w) for q in range(nodes_a)])
    wts = np.outer(mass, wa).ravel()
    keep = wts > 1e-12
    del rho
    return pts[keep], wts[keep] / wts[keep].sum()


def _cdf_pair(gibbs):
    w, rho = gibbs["w"], gibbs["rho"]
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (rho[1:] + rho[:-1]) * np.diff(w))])
    return cdf / cdf[-1], w


def _largest_rise(F) -> float:
    """max over s < s' of F[s'] - F[s] (0 for a non-increasing series)."""
    F = np.asarray(F, float)
    return float(max(0.0, np.max(F - np.minimum.accumulate(F))))


def compute(fig) -> dict:
    """One Langevin run per temperature (run pipeline); free energy from the snapshots; the Gibbs measure from
    :func:`gibbs_plane` on the same data; histograms, L1 and W2 distances."""
    from ..data import from_recipe
    from ..trajectory import load
    from ..transport import exact
    from ._figure import compact

    p = fig.params
    dyn = fig.tables["dynamics"]
    lam = float(dyn["weight_decay"])
    if float(dyn.get("lr", 1.0)) != 1.0 or any(float(v) != 1.0 for v in dyn.get("layer_lr", [1, 1, 1])):
        raise ValueError("the free energy of this figure assumes dynamics.lr = 1 and layer_lr = [1, 1, 1]")
    burn = float(p["burn_in"])
    n_bins, w2_points = int(p["bins"]), int(p["w2_points"])
    rng = np.random.default_rng(int(p.get("sample_seed", 12345)))
    out = {}
    for tau in [float(t) for t in p["temperatures"]]:
        res = fig.run(f"tau_{tau:g}", {"dynamics": {"temperature": tau}})
        with load(res.runs[0].path) as tr:
            times = np.asarray(tr.times, float)
            risk = np.asarray(tr.observables["train_loss"].value, float)
            thetas = tr.particles.read()
            data = from_recipe(tr.data["recipe"])
            m = int(tr.model["m"])
        g = gibbs_plane(data.X, data.y, tau=tau, lam=lam, activation=fig.tables["model"]["activation"])
        second = np.mean(np.sum(thetas**2, axis=2), axis=1)
        entropy = np.array([kl_entropy(th) for th in thetas])
        free = risk + 0.5 * lam * second - tau * entropy
        late = times >= burn
        # the estimator's bias: the same estimator on exact i.i.d. samples of the Gibbs measure, same size
        kl_exact = [kl_entropy(sample_gibbs(g, m, rng)) for _ in range(int(p["bias_samples"]))]
        kl_bias = float(np.mean(kl_exact) - g["entropy"])
        # the w-marginal: time-averaged histogram after the burn-in against the Gibbs masses
        cdf, wg = _cdf_pair(g)
        lo, hi = np.interp([1e-4, 1 - 1e-4], cdf, wg)
        edges = np.linspace(lo, hi, n_bins + 1)
        pstar = _gibbs_bin_masses(g, edges)
        wl = thetas[late][:, :, 1]
        phat = _hist(wl, edges)
        l1 = float(np.abs(phat - pstar).sum())
        split = 0.5 * float(np.abs(_hist(wl[:, 0::2], edges) - _hist(wl[:, 1::2], edges)).sum())
        l1_iid = float(np.sum(np.sqrt(2 * pstar * (1 - pstar) / (math.pi * m))))
        # W2 in the plane: a subsample of the last snapshot, and an exact Gibbs sample, against the quantised Gibbs
        pts, wts = _quantised_gibbs(g)
        sub = thetas[-1][rng.choice(m, size=min(w2_points, m), replace=False)]
        w2 = exact(sub, pts, weights_nu=wts).value
        w2_floor = float(np.mean([exact(sample_gibbs(g, sub.shape[0], rng), pts, weights_nu=wts).value
                                  for _ in range(int(p["w2_floor_samples"]))]))
        f_plateau = float(np.mean(free[late]))
        out[f"{tau:g}"] = {
            "tau": tau, "m": m, "times": compact(times), "risk": compact(risk), "free_energy": compact(free),
            "entropy": compact(entropy), "second_moment": compact(second), "gibbs_free_energy": g["free_energy"],
            "gibbs_risk": g["risk"], "gibbs_entropy": g["entropy"], "gibbs_second_moment": g["second_moment"],
            "gibbs_iterations": g["iterations"], "gibbs_gap": g["gap"], "kl_bias": kl_bias,
            "plateau_free_energy": f_plateau, "plateau_free_energy_std": float(np.std(free[late], ddof=1)),
            "plateau_risk": float(np.mean(risk[late])), "rise": _largest_rise(free),
            "decrease": float(free[0] - f_plateau), "edges": compact(edges), "hist": compact(phat),
            "gibbs_hist": compact(pstar), "l1": l1, "l1_split": split, "l1_iid": l1_iid, "w2": w2,
            "w2_floor": w2_floor, "w2_points": int(sub.shape[0]), "snapshots_averaged": int(late.sum()),
            "gibbs_w": compact(g["w"][::8]), "gibbs_rho": compact(g["rho"][::8]),
            "gibbs_a_mean": compact(g["a_mean"][::8]), "gibbs_a_var": g["a_var"],
            "last": compact(thetas[-1][rng.choice(m, size=min(3000, m), replace=False)], 4)}
    runs = list(out.values())
    claims = {"free_energy_rise": max(r["rise"] / r["decrease"] for r in runs),
              "free_energy_gap_nats": max(abs(r["plateau_free_energy"] - r["gibbs_free_energy"]) / r["tau"]
                                          for r in runs),
              "marginal_l1": max(r["l1"] for r in runs),
              "l1_over_iid": max(r["l1"] / r["l1_iid"] for r in runs)}
    highlights = {}
    for r in runs:
        t = f"tau = {r['tau']:g}"
        highlights[f"{t}: F plateau (particles)"] = r["plateau_free_energy"]
        highlights[f"{t}: F(Gibbs)"] = r["gibbs_free_energy"]
        highlights[f"{t}: KL entropy bias at m (nats)"] = r["kl_bias"]
        highlights[f"{t}: L1 of the w-marginal"] = r["l1"]
        highlights[f"{t}: L1 of one i.i.d. sample of m (expected)"] = r["l1_iid"]
        highlights[f"{t}: split-half L1 floor"] = r["l1_split"]
        highlights[f"{t}: W2 to Gibbs ({r['w2_points']} particles)"] = r["w2"]
        highlights[f"{t}: W2 of an exact Gibbs sample (floor)"] = r["w2_floor"]
    tab = fig.tables
    n_steps = int(round(float(tab["run"]["t_end"]) / float(dyn["dt"])))
    taus = ", ".join(f"{r['tau']:g}" for r in runs)
    sizes = (f"m = {runs[0]['m']}, n = {tab['data']['n_train']}, d = 1, erf, lambda = {lam:g}, "
             f"tau = {taus}, {n_steps} Euler-Maruyama steps of dt = {dyn['dt']:g} "
             f"(T = {float(tab['run']['t_end']):g}), time averages over t >= {burn:g} "
             f"({runs[0]['snapshots_averaged']} snapshots)")
    return {"runs": out, "lambda": lam, "burn_in": burn, "claims": claims, "highlights": highlights, "sizes": sizes}


def plot(numbers: dict, params: dict):
    """Four panels: risk, free energy against time (Gibbs values dashed), the w-marginals against the Gibbs
    marginals, and the particles of one temperature in the (w, a) plane over the Gibbs conditional law of a."""
    import matplotlib.pyplot as plt

    from ._style import finish

    fig, axes = plt.subplots(1, 4, figsize=(20, 4.8), constrained_layout=True)
    runs = list(numbers["runs"].values())
    colors = plt.cm.plasma(np.linspace(0.1, 0.75, len(runs)))
    ax0, ax1, ax2, ax3 = axes
    for r, c in zip(runs, colors):
        t = np.asarray(r["times"])
        ax0.semilogy(t, r["risk"], "-", color=c, lw=1, label=f"tau = {r['tau']:g}: particles")
        ax0.axhline(r["gibbs_risk"], color=c, ls="--", lw=1)
        ax1.plot(t, np.asarray(r["free_energy"]) - r["gibbs_free_energy"], "-", color=c, lw=1,
                 label=f"tau = {r['tau']:g}: rise/decrease {r['rise'] / r['decrease']:.3f}, "
                       f"plateau - F* = {r['plateau_free_energy'] - r['gibbs_free_energy']:+.1e} "
                       f"(tau x KL bias {r['tau'] * r['kl_bias']:+.1e})")
    ax0.plot([], [], "k--", lw=1, label="R(mu*) of the Gibbs measure")
    ax0.set(xlabel="time t (steps x dt)", ylabel="training risk R(mu_t)", title="risk")
    ax1.axvline(numbers["burn_in"], color="0.5", ls=":", lw=1, label=f"burn-in t = {numbers['burn_in']:g}")
    ax1.set_yscale("symlog", linthresh=1e-3, linscale=1.0)
    ax1.axhline(0, color="k", lw=0.6)
    ax1.set(xlabel="time t (steps x dt)", ylabel=r"$\hat F(\mu^m_t) - F(\mu^*)$ (symlog; linear below 1e-3)",
            title=r"free energy $F = R + \frac{\lambda}{2}E|\theta|^2 - \tau H$ (H: Kozachenko-Leonenko, k = 1)")
    for ax in (ax0, ax1):
        ax.title.set_fontsize(9)
        finish(ax)
    ax1.legend(fontsize=6.5)
    for r, c in zip(runs, colors):
        e = np.asarray(r["edges"])
        width = np.diff(e)
        dens = np.asarray(r["hist"])[1:-1] / width
        ax2.stairs(dens, e, color=c, lw=1.2,
                   label=f"tau = {r['tau']:g}: particles; L1 {r['l1']:.3f} (one iid sample: {r['l1_iid']:.3f}, "
                         f"split-half floor {r['l1_split']:.3f})")
        ax2.plot(r["gibbs_w"], r["gibbs_rho"], "--", color=c, lw=1)
    ax2.plot([], [], "k--", lw=1, label="Gibbs marginal rho(w), self-consistent")
    span = max(max(abs(r["edges"][0]), abs(r["edges"][-1])) for r in runs)
    ax2.set_xlim(-1.1 * span, 1.1 * span)
    ax2.set(xlabel="hidden weight w", ylabel="density of w",
            title=f"w-marginal, time average over t >= {numbers['burn_in']:g}, vs Gibbs")
    ax2.title.set_fontsize(9)
    finish(ax2)
    ax2.legend(fontsize=6.5)
    mid = runs[len(runs) // 2]
    th = np.asarray(mid["last"])
    gw, gm = np.asarray(mid["gibbs_w"]), np.asarray(mid["gibbs_a_mean"])
    sd = math.sqrt(mid["gibbs_a_var"])
    ax3.plot(th[:, 1], th[:, 0], ".", ms=1.5, color="0.35", alpha=0.5, label=f"{th.shape[0]} particles at the end")
    ax3.plot(gw, gm, "-", color="C3", lw=1.2, label="Gibbs: E[a | w] = -g(w)/lambda")
    ax3.fill_between(gw, gm - 2 * sd, gm + 2 * sd, color="C3", alpha=0.15, lw=0, label="Gibbs: +/- 2 sd of a | w")
    lo, hi = np.percentile(th[:, 1], [0.2, 99.8])
    ax3.set(xlim=(lo - 0.2, hi + 0.2), xlabel="hidden weight w", ylabel="output weight a",
            title=f"tau = {mid['tau']:g}: particles in the plane; W2 to Gibbs {mid['w2']:.3f}\n"
                  f"(exact Gibbs sample of {mid['w2_points']}: {mid['w2_floor']:.3f})")
    ax3.title.set_fontsize(9)
    finish(ax3)
    fig.suptitle(f"Mean-field Langevin dynamics in the plane theta = (a, w): {numbers['sizes']}", fontsize=9)
    return fig
