"""meanfield: wide two-layer networks in their mean-field and NTK limits, side by side.

A hidden neuron of f(x) = c m^-alpha sum_j a_j sigma(w_j.x/sqrt(d) + b_j) is a particle
theta_j = (a_j, w_j, b_j); training moves the particles. See docs/conventions.md and docs/tour.md.
"""

from .activations import ACTIVATIONS, custom
from .errors import ConfigError, DivergenceError, FileFormatError
from .flow import Dynamics, Flow, FlowState, particle_flow, velocities
from .linearized import Prediction, function_space, linearized_flow
from .model import Model, init_particles, outputs, risk
from .ntk import analytic_ntk, empirical_ntk, nngp
from .population import online_flow, population_flow, population_risk
from .scaling import get_scaling
from .trajectory import load

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS", "custom", "ConfigError", "DivergenceError", "FileFormatError",
    "Dynamics", "Flow", "FlowState", "particle_flow", "velocities",
    "Model", "init_particles", "outputs", "risk", "get_scaling", "__version__",
    "load", "empirical_ntk", "analytic_ntk", "nngp", "function_space", "Prediction", "linearized_flow",
    "population_flow", "online_flow", "population_risk",
]
