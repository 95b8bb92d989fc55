"""Decoders: features (P, in_dim) -> values (P, out_dim)."""

from rbfield.decoders.mlp import MLP, Siren, mlp_param_count

__all__ = ["MLP", "Siren", "mlp_param_count"]
