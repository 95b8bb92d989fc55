"""What a field needs to know about the signal it will represent."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class SignalSpec:
    """Shape of a signal, enough to size a field for it.

    Attributes:
        task: "image", "sdf" or "radiance": selects the preset settings.
        in_dim: coordinate dimension d.
        out_dim: values per point (3 for RGB, 1 for a distance).
        resolution: samples per axis, in coordinate order (an image: (width, height)).
        context: JSON-ready facts the field keeps in its config so that it can be
            used without the data: an SDF's normalization (input units <-> [0, 1]^3),
            a scene's box, occupancy resolution and camera.
    """

    task: str
    in_dim: int
    out_dim: int
    resolution: tuple[int, ...]
    context: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SignalSpec:
        return cls(
            data["task"],
            int(data["in_dim"]),
            int(data["out_dim"]),
            tuple(data["resolution"]),
            dict(data.get("context", {})),
        )
