"""Real spherical harmonics of view directions (the colour input of Instant-NGP's scene field)."""

from __future__ import annotations

import torch


def spherical_harmonics(directions: torch.Tensor) -> torch.Tensor:
    """Real spherical harmonics of degree < 4 (16 terms) of (P, 3) unit vectors -> (P, 16).

    Example:
        >>> import torch
        >>> up = torch.tensor([[0.0, 0.0, 1.0]])
        >>> round(float(spherical_harmonics(up)[0, 0]), 4)  # the constant term, 1 / (2 sqrt(pi))
        0.2821
    """
    x, y, z = directions.unbind(-1)
    xx, yy, zz = x * x, y * y, z * z
    return torch.stack(
        [
            torch.full_like(x, 0.28209479177387814),
            -0.48860251190291987 * y,
            0.48860251190291987 * z,
            -0.48860251190291987 * x,
            1.0925484305920792 * x * y,
            -1.0925484305920792 * y * z,
            0.94617469575755997 * zz - 0.31539156525251999,
            -1.0925484305920792 * x * z,
            0.54627421529603959 * (xx - yy),
            0.59004358992664352 * y * (-3.0 * xx + yy),
            2.8906114426405538 * x * y * z,
            0.45704579946446572 * y * (1.0 - 5.0 * zz),
            0.3731763325901154 * z * (5.0 * zz - 3.0),
            0.45704579946446572 * x * (1.0 - 5.0 * zz),
            1.4453057213202769 * z * (xx - yy),
            0.59004358992664352 * x * (-xx + 3.0 * yy),
        ],
        dim=-1,
    )
