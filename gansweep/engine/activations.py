"""Elementwise nonlinearities with their derivatives, named as configs name them (``"relu"``,
``"leaky_relu:0.1"``, ...): :func:`parse_activation` turns a name into an :class:`Activation`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "arctan", "sigmoid", "identity")
DEFAULT_LEAKY_SLOPE = 0.2


# --------------------------------------------------------------------------------------------- activations
@dataclass(frozen=True)
class Activation:
    """An elementwise nonlinearity. ``forward(x, out)`` may run in place (``out is x``).

    ``backward(g, x, y, out)`` writes ``g * f'(x)`` into ``out`` given the pre-activation ``x`` (only read
    when :attr:`needs_input`) and the output ``y``; ``out`` must not alias ``g`` or ``y``.
    """

    name: str
    slope: float = 0.0  # leaky_relu only

    @property
    def needs_input(self) -> bool:
        """Whether backward needs the pre-activation (else it works from the output alone)."""
        return self.name == "arctan"

    def forward(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        n = self.name
        if n == "relu":
            return np.maximum(x, 0, out=out)
        if n == "leaky_relu":  # slope in [0, 1]: max(x, slope * x)
            return np.maximum(x, x * self.slope, out=out)
        if n == "tanh":
            return np.tanh(x, out=out)
        if n == "arctan":
            return np.arctan(x, out=out)
        if n == "sigmoid":  # 1 / (1 + e^-x) = (1 + tanh(x / 2)) / 2: no overflow for any x
            np.multiply(x, 0.5, out=out)
            np.tanh(out, out=out)
            np.multiply(out, 0.5, out=out)
            return np.add(out, 0.5, out=out)
        if out is not x:  # identity
            np.copyto(out, x)
        return out

    def backward(self, g: np.ndarray, x: np.ndarray | None, y: np.ndarray, out: np.ndarray) -> np.ndarray:
        n = self.name
        if n == "relu":  # f' = [y > 0]
            np.greater(y, 0, out=out)
            return np.multiply(out, g, out=out)
        if n == "leaky_relu":  # f' = 1 where y > 0 else slope (y > 0 iff x > 0 since slope >= 0)
            np.greater(y, 0, out=out)
            np.multiply(out, 1.0 - self.slope, out=out)
            np.add(out, self.slope, out=out)
            return np.multiply(out, g, out=out)
        if n == "tanh":  # f' = 1 - y^2
            np.multiply(y, y, out=out)
            np.subtract(1, out, out=out)
            return np.multiply(out, g, out=out)
        if n == "arctan":  # f' = 1 / (1 + x^2)
            np.multiply(x, x, out=out)
            np.add(out, 1, out=out)
            return np.divide(g, out, out=out)
        if n == "sigmoid":  # f' = y (1 - y)
            np.subtract(1, y, out=out)
            np.multiply(out, y, out=out)
            return np.multiply(out, g, out=out)
        np.copyto(out, g)  # identity
        return out


def parse_activation(spec: str) -> Activation:
    """Parse ``"relu"``, ``"leaky_relu"`` (slope 0.2), ``"leaky_relu:<slope>"`` (slope in [0, 1]), ``"tanh"``,
    ``"arctan"``, ``"sigmoid"`` or ``"identity"``."""
    if not isinstance(spec, str):
        raise ValueError(f"activation must be a string, one of {ACTIVATIONS}; got {spec!r}")
    name, sep, arg = spec.partition(":")
    if name not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {spec!r}; expected one of {ACTIVATIONS} (or leaky_relu:<slope>)"
        )
    if not sep:
        return Activation(name, DEFAULT_LEAKY_SLOPE if name == "leaky_relu" else 0.0)
    if name != "leaky_relu":
        raise ValueError(f"activation {spec!r}: only leaky_relu takes a parameter")
    try:
        slope = float(arg)
    except ValueError:
        raise ValueError(f"activation {spec!r}: slope {arg!r} is not a number") from None
    if not 0.0 <= slope <= 1.0:  # also rejects NaN
        raise ValueError(f"activation {spec!r}: slope {slope} must lie in [0, 1]")
    return Activation(name, slope)
