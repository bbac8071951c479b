"""meanfield: wide two-layer networks in their mean-field and NTK limits, side by side.

A hidden neuron of f(x) = c m^-alpha sum_j a_j sigma(w_j.x/sqrt(d) + b_j) is a particle
theta_j = (a_j, w_j, b_j); training moves the particles. See docs/conventions.md and docs/tour.md.

The names below are imported on first use (PEP 562), so ``import meanfield`` is quick and loads neither numba
nor h5py until a name that needs them is asked for; the command line relies on this to take over SIGINT and
SIGTERM before anything heavy is imported.

>>> import meanfield as mf
>>> model = mf.Model(d=3, m=8)
>>> mf.init_particles(model, 0).shape
(8, 4)
"""

from importlib import import_module

from .errors import ConfigError, DivergenceError, FileFormatError, MeanfieldError

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_WHERE = {
    # models and data
    "Model": "model", "init_particles": "model", "outputs": "model", "risk": "model",
    "ACTIVATIONS": "activations", "custom": "activations", "get_scaling": "scaling",
    "Dataset": "data", "teacher_student": "data", "from_arrays": "data", "load_digits": "data",
    # dynamics
    "Dynamics": "flow", "Flow": "flow", "FlowState": "flow", "particle_flow": "flow", "velocities": "flow",
    "population_flow": "population", "online_flow": "population", "population_risk": "population",
    "linearized_flow": "linearized", "function_space": "linearized", "Prediction": "linearized",
    # NTK and transport
    "empirical_ntk": "ntk", "analytic_ntk": "ntk", "nngp": "ntk", "w2": "transport",
    # observers, runs and files
    "Observer": "observers", "default_observers": "observers",
    "simulate": "run", "run_config": "run", "load_config": "config",
    "Recorder": "h5md", "load": "trajectory",
}
_RENAMED = {"load_config": "load"}

__all__ = sorted(_WHERE) + ["ConfigError", "DivergenceError", "FileFormatError", "MeanfieldError", "__version__"]


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f"module 'meanfield' has no attribute {name!r}")
    value = getattr(import_module(f".{_WHERE[name]}", __name__), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_WHERE))
