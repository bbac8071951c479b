"""Numba kernels: module-level ``@njit(cache=True)`` functions, arrays and integer codes in, arrays out.

Nothing here validates input or raises; the public API above checks everything first. Variants
(activation, integrator) are chosen by small integer codes, never by passing functions, so every
kernel is cached on disk.

A user-supplied activation cannot be an integer code. :func:`custom_kernels` recompiles the same kernel
source with the names ``sigma``/``dsigma`` bound to the user's functions (and every kernel that calls
them rebound in turn). Those copies are compiled once per process and activation, never cached on disk:
the disk cache keys on the source location, which the copies share with the built-in kernels.
"""

import hashlib
import os
import types
from pathlib import Path
from types import SimpleNamespace

from numba import njit
from numba.core.dispatcher import Dispatcher


def drop_stale_cache(folder: Path) -> bool:
    """Delete numba's cached kernels in ``folder/__pycache__`` when any kernel source has changed.

    numba re-validates a cached function only against its own source file, and a cached kernel embeds the
    kernels it calls (``advance`` embeds ``finite``, which inlines ``activation``): after an edit to a callee,
    its callers would otherwise keep running the old code. A digest of every kernel source is kept next to the
    cache; when it differs, the cache is dropped and rebuilt on first use. Returns whether it dropped anything.
    """
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in sorted(folder.glob("*.py")))).hexdigest()
    cache = folder / "__pycache__"
    stamp = cache / "meanfield-kernels.sha256"
    try:
        if stamp.read_text() == digest:
            return False
    except OSError:
        pass
    dropped = False
    for f in list(cache.glob("*.nbi")) + list(cache.glob("*.nbc")):
        try:
            f.unlink()
            dropped = True
        except OSError:
            pass
    try:
        cache.mkdir(exist_ok=True)
        tmp = stamp.with_name(f"{stamp.name}.{os.getpid()}")
        tmp.write_text(digest)
        os.replace(tmp, stamp)  # atomic: a concurrent reader sees the old digest or the new one
    except OSError:  # a read-only installation: numba then caches elsewhere
        pass
    return dropped


drop_stale_cache(Path(__file__).parent)

from . import advance, finite, linearized, population  # noqa: E402  (after the cache check)

#: The cached kernels for built-in activations.
BUILTIN = SimpleNamespace(
    outputs=finite.outputs, residuals=finite.residuals, velocities=finite.velocities,
    velocity=advance.velocity, advance=advance.advance, lin_outputs=linearized.lin_outputs,
    population_velocities=population.population_velocities, pop_pair_table=population.pop_pair_table,
    pop_teacher_energy=population.pop_teacher_energy, pop_risk_from_rows=population.pop_risk_from_rows,
)

_CUSTOM = {}


def _rebind(modules, replacements):
    """Recompile every kernel defined in ``modules`` (in dependency order) with names rebound."""
    bound = dict(replacements)
    for mod in modules:
        scope = dict(vars(mod))
        scope.update(bound)
        for name, obj in vars(mod).items():
            if isinstance(obj, Dispatcher) and obj.py_func.__module__ == mod.__name__:
                py = obj.py_func
                fn = types.FunctionType(py.__code__, scope, name, py.__defaults__, py.__closure__)
                options = {k: v for k, v in obj.targetoptions.items() if k not in ("cache", "nopython")}
                scope[name] = bound[name] = njit(**options)(fn)
    return bound


def _scalar(fn):
    """A jitted scalar function: dispatchers as they are, Python functions jitted, builtins (math.sin) wrapped."""
    if isinstance(fn, Dispatcher):
        return fn
    if isinstance(fn, types.FunctionType):
        return njit(fn)
    return njit(lambda z: fn(z))


def custom_kernels(activation):
    """Kernel namespace for a custom activation (``activation.code == -1``), built once per process."""
    key = (activation.sigma, activation.dsigma)
    if key not in _CUSTOM:
        s, ds = _scalar(activation.sigma), _scalar(activation.dsigma)
        sig = njit(inline="always")(lambda code, z: s(z))
        dsig = njit(inline="always")(lambda code, z: ds(z))
        k = _rebind([finite, linearized, population, advance], {"sigma": sig, "dsigma": dsig})
        _CUSTOM[key] = SimpleNamespace(**{name: k[name] for name in vars(BUILTIN)})
    return _CUSTOM[key]
