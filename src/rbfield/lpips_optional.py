"""LPIPS (Zhang et al. 2018; AlexNet, version 0.1) when it can be computed offline.

LPIPS needs two things rbfield does not ship:

* the ``lpips`` package (``pip install rbfield[lpips]``; it brings torchvision
  and carries its own linear-layer weights), and
* torchvision's ImageNet AlexNet weights, the file :data:`ALEXNET_WEIGHTS` in
  torch hub's checkpoint cache (:func:`backbone_path`), which ``lpips`` would
  otherwise download on first use.

rbfield never downloads: it builds the LPIPS network with a random backbone
(``pnet_rand=True``, so nothing is fetched) and loads the backbone from that
file only if it is already on disk. Otherwise the metric is reported as
skipped, with :func:`skipped_message` saying what is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from rbfield.errors import RbfieldError

#: torchvision's file name for the ImageNet AlexNet weights (``AlexNet_Weights.IMAGENET1K_V1``).
ALEXNET_WEIGHTS = "alexnet-owt-7be5be79.pth"
SKIPPED = "skipped: weights not available offline"
SETTINGS = "LPIPS AlexNet v0.1 (lpips package), RGB on white scaled to [-1, 1], per test view then the mean"


def backbone_path() -> Path:
    """Where torch hub (and so lpips) keeps the AlexNet weights: ``<torch.hub.get_dir()>/checkpoints/<file>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_WEIGHTS


def skipped_message() -> str:
    """The metrics.json entry when LPIPS cannot be computed, naming what to install and where the weights go."""
    return f"{SKIPPED} (needs `pip install rbfield[lpips]` and {backbone_path()})"


def load_backbone(network: torch.nn.Module, state: dict) -> None:
    """Copy torchvision AlexNet weights into lpips' AlexNet.

    lpips splits ``alexnet().features`` into sequential slices whose children
    keep their index as name (``slice2.3`` is ``features.3``); ``state`` holds
    torchvision's keys ``features.<index>.<weight|bias>`` (classifier keys are
    ignored).

    Raises:
        KeyError: a convolution of ``network`` has no weights in ``state``.
    """
    layers = {name: layer for piece in network.children() for name, layer in piece.named_children()}
    for name, layer in layers.items():
        own = layer.state_dict()
        if own:
            layer.load_state_dict({key: state[f"features.{name}.{key}"] for key in own})


def load_lpips() -> Callable[[torch.Tensor, torch.Tensor], float] | None:
    """An LPIPS distance if the lpips package and the AlexNet weights are on this machine, else None.

    The returned function takes two (H, W, 3) float images in [0, 1] and gives
    their LPIPS distance (0 = identical). Nothing is ever downloaded.

    Raises:
        RbfieldError: the weights file is there but unreadable or not AlexNet's.
    """
    path = backbone_path()
    if not path.is_file():
        return None
    try:
        import lpips
    except ImportError:
        return None
    model = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()
    try:
        load_backbone(model.net, torch.load(path, map_location="cpu", weights_only=True))
    except Exception as error:  # unreadable file, missing keys, wrong shapes: one clear message
        raise RbfieldError(
            f"{path}: not usable as LPIPS's AlexNet weights ({type(error).__name__}: {error}); "
            "replace it, or remove it to skip LPIPS"
        ) from None

    @torch.no_grad()
    def distance(image: torch.Tensor, target: torch.Tensor) -> float:
        pair = [x.permute(2, 0, 1)[None].float() * 2.0 - 1.0 for x in (image, target)]
        return float(model(*pair).mean())

    return distance
