"""Optional LPIPS: skipped with a clear message and no network use unless the package and weights are present."""

from __future__ import annotations

import socket
import sys
import types

import pytest
import torch
from torch import nn

from rbfield.errors import RbfieldError
from rbfield.lpips_optional import ALEXNET_WEIGHTS, SKIPPED, backbone_path, load_lpips, skipped_message


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty torch hub folder and no network: any connection attempt fails the test."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def refuse(*args, **kwargs):
        raise AssertionError("LPIPS tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    return tmp_path / "hub" / "checkpoints"


class FakeLpips(nn.Module):
    """Stands in for lpips.LPIPS: one sliced 'AlexNet' conv; distance = mean |feature difference|."""

    last = None  # the most recently built instance

    def __init__(self, **kwargs):
        super().__init__()
        self.kwargs = kwargs
        FakeLpips.last = self
        self.net = nn.Module()
        self.net.slice1 = nn.Sequential()
        self.net.slice1.add_module("0", nn.Conv2d(3, 4, 3))
        self.net.slice1.add_module("1", nn.ReLU())

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        assert a.shape[1] == 3 and a.min() >= -1 and a.max() <= 1  # NCHW in [-1, 1]
        return (self.net.slice1(a) - self.net.slice1(b)).abs().mean((1, 2, 3), keepdim=True)


@pytest.fixture
def fake_package(monkeypatch):
    module = types.ModuleType("lpips")
    module.LPIPS = FakeLpips
    monkeypatch.setitem(sys.modules, "lpips", module)


def test_skipped_without_weights_and_without_network(offline):
    assert load_lpips() is None
    message = skipped_message()
    assert message.startswith(SKIPPED) and str(offline / ALEXNET_WEIGHTS) in message and "rbfield[lpips]" in message


def test_skipped_when_the_package_is_missing_even_with_weights(offline, monkeypatch):
    offline.mkdir(parents=True)
    torch.save({}, offline / ALEXNET_WEIGHTS)
    monkeypatch.setitem(sys.modules, "lpips", None)  # import lpips raises ImportError
    assert load_lpips() is None


def test_computed_from_the_cached_backbone(offline, fake_package):
    offline.mkdir(parents=True)
    weight = torch.randn(4, 3, 3, 3)
    torch.save(
        {"features.0.weight": weight, "features.0.bias": torch.randn(4), "classifier.1.weight": torch.randn(2, 2)},
        backbone_path(),
    )
    distance = load_lpips()
    model = FakeLpips.last
    assert model.kwargs["pnet_rand"] is True and model.kwargs["net"] == "alex"  # nothing for lpips to download
    assert torch.equal(model.net.slice1[0].weight, weight)
    image = torch.rand(16, 16, 3)
    assert distance(image, image) == 0.0
    assert distance(image, torch.rand(16, 16, 3)) > 0.0


def test_unusable_weights_file_is_one_clear_error(offline, fake_package):
    offline.mkdir(parents=True)
    backbone_path().write_bytes(b"not a checkpoint")
    with pytest.raises(RbfieldError, match="not usable as LPIPS's AlexNet weights"):
        load_lpips()
