"""The preset registry: every preset builds and sizes itself for every task it has, and configs round-trip."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch

from rbfield import PRESETS, SignalSpec, build_field, default_settings, field_from_config, load_field, save_field
from rbfield.encodings.grid import grid_layout
from rbfield.errors import RbfieldError
from rbfield.fields.registry import NEURBF_LARGE_IMAGE
from rbfield.signals.radiance import scene_spec

SPECS = {
    "image": SignalSpec("image", 2, 3, (256, 256)),
    "sdf": SignalSpec("sdf", 3, 1, (512, 512, 512), context={"normalization": {"centre": [0, 0, 0], "scale": 1.0}}),
    "radiance": scene_spec({"width": 200, "height": 200}),
}
BUDGETS = {"image": 128_000, "sdf": 500_000, "radiance": 1_000_000}
CASES = [(preset, task) for preset, tasks in PRESETS.items() for task in tasks]


def _outputs(field, task: str, points: int = 7):
    x = torch.rand(points, SPECS[task].in_dim)
    if task == "radiance":
        density, colour = field(x * 2 - 1, torch.nn.functional.normalize(torch.randn(points, 3), dim=-1))
        return torch.cat([density[:, None], colour], -1)
    return field(x)


@pytest.mark.parametrize(("preset", "task"), CASES, ids=[f"{p}-{t}" for p, t in CASES])
def test_every_preset_fills_its_budget_for_every_task(preset, task):
    budget = BUDGETS[task]
    field = build_field(preset, SPECS[task], budget)
    counts = field.param_counts()
    # Sized to the budget: never over it, and close to it (the scene hash grid's power-of-two
    # tables leave the most unused: 7.5 % at this budget).
    assert 0.9 * budget <= counts["trainable"] <= budget
    assert counts["total"] >= counts["trainable"]
    assert counts["trainable"] == sum(p.numel() for group in field.param_groups() for p in group["params"])
    assert _outputs(field, task).shape == (7, 4 if task == "radiance" else SPECS[task].out_dim)


@pytest.mark.parametrize(("preset", "task"), CASES, ids=[f"{p}-{t}" for p, t in CASES])
def test_a_config_rebuilds_the_same_field(preset, task):
    field = build_field(preset, SPECS[task], BUDGETS[task], seed=3)
    rebuilt = field_from_config(field.config)
    assert rebuilt.config == field.config
    before, after = field.state_dict(), rebuilt.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[name], after[name]) for name in before)


@pytest.mark.parametrize(("preset", "task"), CASES, ids=[f"{p}-{t}" for p, t in CASES])
def test_a_tiny_budget_is_refused_with_the_smallest_that_fits(preset, task):
    with pytest.raises(RbfieldError, match="too small") as error:
        build_field(preset, SPECS[task], 50)
    needed = int(str(error.value).split("needs at least ")[1].split()[0].rstrip(";"))
    build_field(preset, SPECS[task], needed)  # the figure the message gives is enough


def test_custom_settings_are_used_recorded_and_reloaded(tmp_path):
    settings = replace(default_settings("neurbf", "image"), grid_share=0.25, channels=16)
    field = build_field("neurbf", SPECS["image"], "128k", settings=settings)
    default = build_field("neurbf", SPECS["image"], "128k")
    assert field.encoding.parts[0].out_dim == 16
    assert field.encoding.parts[1].table.numel() > default.encoding.parts[1].table.numel()
    assert field.config["settings"]["grid_share"] == 0.25
    save_field(field, tmp_path)
    loaded = load_field(tmp_path)
    assert loaded.config == field.config
    assert loaded.encoding.parts[0].out_dim == 16


def test_settings_of_another_family_are_refused():
    with pytest.raises(RbfieldError, match="takes NeuRBFSettings"):
        build_field("neurbf", SPECS["image"], "128k", settings=default_settings("siren", "image"))


def test_a_preset_without_settings_for_a_task_names_the_ones_that_have():
    with pytest.raises(RbfieldError, match="no settings for 'image' signals.*neurbf"):
        build_field("triplane", SPECS["image"], "128k")
    with pytest.raises(RbfieldError, match="unknown field 'nope'"):
        build_field("nope", SPECS["image"], "128k")


def test_the_sdf_normalization_survives_a_rebuild():
    field = build_field("neurbf", SPECS["sdf"], "200k")
    assert field_from_config(field.config).config["spec"]["context"]["normalization"]["scale"] == 1.0


def test_a_field_takes_any_leading_shape():
    field = build_field("instant-ngp", SPECS["image"], "20k")
    x = torch.rand(4, 5, 2)
    assert torch.allclose(field(x), field(x.reshape(20, 2)).reshape(4, 5, 3))


def test_neurbf_takes_its_large_image_settings_from_half_a_megapixel():
    small, large = SignalSpec("image", 2, 3, (724, 724)), SignalSpec("image", 2, 3, (1024, 512))
    assert default_settings("neurbf", "image", small, "1M") == default_settings("neurbf", "image")
    assert default_settings("neurbf", "image", large, "1M") == NEURBF_LARGE_IMAGE != default_settings("neurbf", "image")
    # Below the large-image field's smallest budget, the image settings still fit.
    assert default_settings("neurbf", "image", large, "20k") == default_settings("neurbf", "image")
    build_field("neurbf", large, "20k")
    field = build_field("neurbf", large, "1M")
    rbf, grid = field.encoding.parts
    assert rbf.out_dim == NEURBF_LARGE_IMAGE.channels and len(grid.layout.resolutions) == NEURBF_LARGE_IMAGE.grid_levels
    # The grid takes its 90 % of the budget (its table any multiple of 8 rows).
    assert 0.89 * field.param_counts()["trainable"] < grid.table.numel() <= 0.9 * field.param_counts()["trainable"]
    assert field_from_config(field.config).config == field.config
    chosen = build_field("neurbf", large, "1M", settings=default_settings("neurbf", "image"))
    assert chosen.encoding.parts[0].out_dim == default_settings("neurbf", "image").channels  # given settings win


@pytest.mark.parametrize("power_of_two", [True, False])
def test_neurbf_grid_table_is_the_largest_within_its_share(power_of_two):
    spec, budget = SignalSpec("image", 2, 3, (1920, 1280)), 4_300_000
    settings = replace(NEURBF_LARGE_IMAGE, grid_table_power_of_two=power_of_two)
    field = build_field("neurbf", spec, budget, settings=settings)
    grid = field.encoding.parts[1]
    rows = max(grid.layout.table_sizes)
    assert (rows & (rows - 1) == 0) if power_of_two else rows % 8 == 0
    assert grid.table.numel() <= settings.grid_share * budget
    # The next table up (twice the rows, or 8 more) would not fit the share.
    next_rows = 2 * rows if power_of_two else rows + 8
    next_layout = grid_layout(2, settings.grid_levels, 0, settings.grid_base, max(spec.resolution), next_rows)
    assert next_layout.total_rows * settings.grid_features > settings.grid_share * budget
    assert 0.9 * budget <= field.param_counts()["trainable"] <= budget


def test_a_large_image_field_saved_before_the_table_setting_rebuilds_with_a_power_of_two_table():
    spec = SignalSpec("image", 2, 3, (1920, 1280))
    earlier = replace(NEURBF_LARGE_IMAGE, grid_table_power_of_two=True)
    field = build_field("neurbf", spec, "4.3M", settings=earlier)
    config = copy.deepcopy(field.config)
    del config["settings"]["grid_table_power_of_two"]  # as a run folder written before the setting existed
    rebuilt = field_from_config(config)
    assert max(rebuilt.encoding.parts[1].layout.table_sizes) == 2**18
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in field.state_dict().items()}
