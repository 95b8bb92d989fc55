"""Encodings: coordinates (P, d) in [0, 1]^d -> features (P, out_dim)."""

from rbfield.encodings.coordinates import Concatenation, ScaledCoordinates
from rbfield.encodings.frequency import FourierFeatures, PositionalEncoding
from rbfield.encodings.grid import MultiresGrid
from rbfield.encodings.rbf import AdaptiveRBF

__all__ = [
    "AdaptiveRBF",
    "Concatenation",
    "FourierFeatures",
    "MultiresGrid",
    "PositionalEncoding",
    "ScaledCoordinates",
]
