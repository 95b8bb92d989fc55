"""What a field needs to know about the signal it will represent."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class SignalSpec:
    """Shape of a signal, enough to size a field for it.

    Attributes:
        task: "image" (more tasks plug in with their own preset settings).
        in_dim: coordinate dimension d.
        out_dim: values per point (3 for RGB).
        resolution: samples per axis, in coordinate order (an image: (width, height)).
    """

    task: str
    in_dim: int
    out_dim: int
    resolution: tuple[int, ...]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SignalSpec":
        return cls(data["task"], int(data["in_dim"]), int(data["out_dim"]), tuple(data["resolution"]))
