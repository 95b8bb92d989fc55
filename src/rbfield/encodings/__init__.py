"""Encodings: coordinates (P, d) in [0, 1]^d -> features (P, out_dim)."""

from rbfield.encodings.coordinates import Concatenation, ScaledCoordinates
from rbfield.encodings.frequency import (
    FourierFeatures,
    PositionalEncoding,
    frequency_encoding,
)
from rbfield.encodings.grid import MultiresGrid
from rbfield.encodings.planes import TriPlane
from rbfield.encodings.rbf import AdaptiveRBF
from rbfield.encodings.spherical_harmonics import spherical_harmonics
from rbfield.encodings.vector_matrix import VectorMatrix

__all__ = [
    "AdaptiveRBF",
    "Concatenation",
    "FourierFeatures",
    "MultiresGrid",
    "PositionalEncoding",
    "ScaledCoordinates",
    "TriPlane",
    "VectorMatrix",
    "frequency_encoding",
    "spherical_harmonics",
]
