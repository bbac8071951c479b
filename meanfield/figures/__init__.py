"""Figures: one module per canonical figure, each with a ``plot(...)`` that writes a PNG.

matplotlib is imported here and below only; ``import meanfield`` does not import it.
"""
