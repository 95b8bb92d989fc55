"""Devices: --device resolution, the commands that take it, work that follows the field's device, and the
dispatch between the fast CPU kernels and their PyTorch twins.

No GPU here: the "meta" device (tensors without data) stands in for one where a test checks only where
tensors go.
"""

from __future__ import annotations

import argparse
import json

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from torch import nn

from rbfield.cli import build_parser, main
from rbfield.decoders import MLP
from rbfield.encodings.grid import _compiled_kernels_for
from rbfield.encodings.neighbours import NeighbourIndex, nearest_by_distance
from rbfield.errors import RbfieldError
from rbfield.ops.rbf_compose import _kernel_inputs_ok
from rbfield.scenes.mesh import density_volume
from rbfield.scenes.occupancy import OccupancyGrid
from rbfield.signals.image import ImageSignal
from rbfield.tasks.common import resolve_device
from rbfield.tasks.sdf import shape_mesh

META = torch.device("meta")


def _devices_present(monkeypatch, cuda: bool, mps: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


@pytest.mark.parametrize(
    "cuda, mps, expected", [(True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu")]
)
def test_auto_takes_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    _devices_present(monkeypatch, cuda, mps)
    assert resolve_device("auto") == torch.device(expected)
    assert resolve_device() == torch.device(expected)


@pytest.mark.parametrize("name", ["cuda", "mps", "cuda:1"])
def test_an_unavailable_device_is_refused_clearly(monkeypatch, name):
    _devices_present(monkeypatch, cuda=False, mps=False)
    kind = name.split(":")[0].upper()
    message = f"--device {name}: this PyTorch .* sees no {kind} device; use --device cpu or --device auto"
    with pytest.raises(RbfieldError, match=message):
        resolve_device(name)


def test_available_and_unknown_devices(monkeypatch):
    _devices_present(monkeypatch, cuda=True, mps=False)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(RbfieldError, match="unknown device 'tpu'; choose from auto, cpu, cuda, mps"):
        resolve_device("tpu")


def _leaf_commands() -> list[argparse.ArgumentParser]:
    """Every command that runs work: the parser's leaves."""
    leaves, parsers = [], [build_parser()]
    while parsers:
        parser = parsers.pop()
        children = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if children:
            parsers += children[0].choices.values()
        else:
            leaves.append(parser)
    return leaves


def test_every_command_that_runs_work_takes_device_auto_by_default():
    leaves = _leaf_commands()
    assert len(leaves) == 12  # fit x3, render x2, eval x3, compare x2, export mesh, demo
    for leaf in leaves:
        device = leaf._option_string_actions.get("--device")
        assert device is not None, leaf.prog
        assert device.default == "auto" and list(device.choices) == ["auto", "cpu", "cuda", "mps"], leaf.prog


@pytest.fixture
def small_photo(tmp_path, chelsea_crop_uint8):
    path = tmp_path / "photo.png"
    iio.imwrite(path, chelsea_crop_uint8[:32, :32])
    return path


def test_auto_resolves_to_the_cpu_here_and_the_fit_records_it(tmp_path, small_photo):
    out = tmp_path / "run"
    code = main(["fit", "image", str(small_photo), "--params", "12k", "--steps", "5", "--out", str(out), "--quiet"])
    assert code == 0
    assert json.loads((out / "metrics.json").read_text())["device"] == "cpu"


@pytest.mark.parametrize("dataset", [False, True], ids=["one input", "a folder of inputs"])
def test_a_fit_on_an_unavailable_device_stops_with_one_line(monkeypatch, tmp_path, small_photo, capsys, dataset):
    _devices_present(monkeypatch, cuda=False, mps=False)
    path = small_photo.parent if dataset else small_photo
    out = tmp_path / "run"
    code = main(["fit", "image", str(path), "--device", "cuda", "--steps", "5", "--out", str(out), "--quiet"])
    error = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert error.startswith("error: --device cuda: this PyTorch") and error.count("\n") == 1


class _RecordingField(nn.Module):
    """A field whose parameter sits on ``device`` and which records the device of every input; it answers
    on the CPU (meta tensors hold no values) with ``value`` everywhere."""

    def __init__(self, device: torch.device, value: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, device=device))
        self.value = value
        self.seen: set[torch.device] = set()

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        self.seen.add(points.device)
        return torch.full((points.shape[0], 1), self.value)


def test_marching_cubes_evaluates_the_field_on_its_device():
    field = _RecordingField(META)
    vertices, faces = shape_mesh(field, 16)
    assert field.seen == {META}
    assert vertices.shape == (0, 3) and faces.shape == (0, 3)  # a constant field has no surface


def test_a_scene_density_volume_is_sampled_on_the_fields_device():
    field = _RecordingField(META, value=2.0)
    field.box_min, field.box_max = torch.full((3,), -1.0, device=META), torch.ones(3, device=META)
    field.density = lambda points: field(points)[:, 0]
    volume = density_volume(field, 4)
    assert field.seen == {META}
    assert volume.shape == (4, 4, 4) and (volume == 2.0).all()


def test_occupancy_cells_are_sampled_on_the_grids_device():
    grid = OccupancyGrid(-torch.ones(3), torch.ones(3), resolution=4)
    on_cpu = grid.cell_points(torch.Generator().manual_seed(0))
    on_meta = grid.to(META).cell_points(torch.Generator().manual_seed(0))
    assert on_cpu.shape == on_meta.shape == (64, 3) and on_meta.device == META


def test_an_image_signal_keeps_its_pixels_on_the_fields_device(coffee_crop):
    signal = ImageSignal(coffee_crop[:16, :16], batch_size=2**10)
    generator = torch.Generator().manual_seed(0)
    assert all(tensor.device.type == "cpu" for tensor in signal.batch(0, generator))
    signal.to(META)
    first, second = signal.batch(0, generator), signal.batch(1, generator)
    assert all(tensor.device == META for tensor in first)
    assert first[0] is second[0]  # one coordinate tensor for every step (the RBF cache keys on it)


@pytest.mark.usefixtures("fast_paths_on")
def test_fast_kernels_are_chosen_by_the_tensors_device():
    points, table = torch.rand(8, 3), torch.rand(16, 2)
    assert _compiled_kernels_for(points, table) is not None
    assert _compiled_kernels_for(points.to(META), table.to(META)) is None
    index, tables = torch.zeros(8, 4, dtype=torch.int64), torch.rand(8, 4, 3)
    assert _kernel_inputs_ok(index, tables, tables, torch.rand(5, 3))
    assert not _kernel_inputs_ok(index.to(META), tables.to(META), tables.to(META), torch.rand(5, 3, device=META))
    decoder = MLP(3, 2, width=8, n_layers=2)
    assert decoder._runs_chunked(points)
    assert not decoder.to(META)._runs_chunked(points.to(META))


def test_neighbour_index_follows_its_centres_device():
    assert NeighbourIndex(torch.rand(20, 3))._tree is not None
    assert NeighbourIndex(torch.rand(20, 3, device=META))._tree is None


@pytest.mark.parametrize("dim", [2, 3])
def test_the_device_neighbour_search_matches_the_cpu_tree(dim):
    centres = torch.rand(400, dim)
    points = torch.rand(1000, dim) * 1.2 - 0.1  # some outside the centres' box
    for k in (1, 4, 8):
        tree = NeighbourIndex(centres).query(points, k)
        by_distance = nearest_by_distance(points, centres, k, chunk=300)  # several chunks, the last one short
        assert by_distance.shape == (1000, k) and by_distance.dtype == torch.int64
        # Compare distances: ties may order differently.
        distance = [((points[:, None] - centres[index]) ** 2).sum(-1) for index in (tree, by_distance)]
        torch.testing.assert_close(distance[0], distance[1])
        np.testing.assert_array_equal(tree[:, 0], by_distance[:, 0])
