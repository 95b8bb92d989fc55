"""The radiance signal: batches of training rays, the photometric loss, test-view metrics.

Plugs into :func:`rbfield.train.fit`. Each step draws ``batch_rays`` random
pixels of random training views (composited on white), renders their rays with
stratified jitter and returns the mean squared error. After each step the
occupancy grid is refreshed every ``occupancy_every`` steps, and a NeuRBF field
places its RBFs once its grid-only warm-up (``rbf_warmup_steps``) is over.
"""

from __future__ import annotations

import torch

from rbfield.metrics import psnr, psnr_from_mse, ssim
from rbfield.scenes.dataset import Views
from rbfield.scenes.rays import camera_rays
from rbfield.scenes.render import render_rays, render_view
from rbfield.spec import SignalSpec

#: The cubic scene box (low, high) in scene units: NeRF's Blender scenes fit inside [-1, 1]^3 (lego's 1.5 box
#: is the exception users pass explicitly).
DEFAULT_BOX = (-1.0, 1.0)
#: Occupancy-grid cells per axis.
OCCUPANCY_RESOLUTION = 64


def scene_spec(
    camera: dict | None = None, box: tuple[float, float] = DEFAULT_BOX, occupancy_resolution: int = OCCUPANCY_RESOLUTION
) -> SignalSpec:
    """The spec of a scene: 3-D points to density + RGB, with what a render needs kept in its context.

    Args:
        camera: the training camera ({"width", "height", "fx", "fy", "cx", "cy", "radius", "scene",
            "downscale"}), kept so renders need no data; None or {} when unknown.
        box: (low, high) of the cubic scene box, scene units.
        occupancy_resolution: occupancy cells per axis.
    """
    camera = dict(camera or {})
    resolution = (int(camera.get("width", 1)), int(camera.get("height", 1)))
    context = {
        "box": [float(box[0]), float(box[1])],
        "occupancy_resolution": int(occupancy_resolution),
        "camera": camera,
    }
    return SignalSpec(task="radiance", in_dim=3, out_dim=4, resolution=resolution, context=context)


class RadianceSignal:
    """Training rays and evaluation views of one scene.

    Args:
        train: training views.
        test: evaluation views (the test split).
        step_size: marching step (scene units).
        batch_rays: rays per step.
        eval_views: indices of test views used for the periodic PSNR.
        occupancy_every: steps between occupancy-grid refreshes.
        rbf_warmup_steps: steps of grid-only training before RBFs are placed.
        camera: the training camera, recorded in :meth:`spec` (see :func:`scene_spec`).
    """

    def __init__(
        self,
        train: Views,
        test: Views,
        step_size: float,
        batch_rays: int = 4096,
        eval_views: tuple[int, ...] = (0,),
        occupancy_every: int = 16,
        rbf_warmup_steps: int = 500,
        camera: dict | None = None,
    ):
        self.train = train
        self.test = test
        self.step_size = step_size
        self.batch_rays = batch_rays
        self.eval_views = [i for i in eval_views if i < test.count]
        self.occupancy_every = occupancy_every
        self.rbf_warmup_steps = rbf_warmup_steps
        self.train_rgb = train.rgb_on_white(slice(None))  # (N, H, W, 3) float32
        self.camera = camera

    def spec(self) -> SignalSpec:
        return scene_spec(self.camera)

    def batch(self, step: int, generator: torch.Generator):
        """((origins (B, 3), directions (B, 3), jitter (B,)), target rgb (B, 3))."""
        views = torch.randint(self.train.count, (self.batch_rays,), generator=generator)
        rows = torch.randint(self.train.height, (self.batch_rays,), generator=generator)
        columns = torch.randint(self.train.width, (self.batch_rays,), generator=generator)
        origins, directions = camera_rays(
            self.train.poses[views], self.train.intrinsics[views], columns + 0.5, rows + 0.5
        )
        jitter = torch.rand(self.batch_rays, generator=generator)
        return (origins, directions, jitter), self.train_rgb[views, rows, columns]

    def training_loss(self, field, inputs, targets) -> torch.Tensor:
        origins, directions, jitter = inputs
        rendered = render_rays(field, origins, directions, self.step_size, jitter=jitter)
        loss = torch.mean((rendered["rgb"] - targets) ** 2)
        if not loss.requires_grad:  # no samples hit occupied space this step
            loss = loss + 0.0 * next(p for p in field.parameters() if p.requires_grad).sum()
        return loss

    def progress(self, loss: float) -> dict:
        return {"psnr": psnr_from_mse(loss)}

    def after_step(self, field, step: int) -> None:
        if step % self.occupancy_every == 0:
            generator = torch.Generator().manual_seed(step)
            field.occupancy.update(field.density, self.step_size, generator=generator)
        rbf_active = getattr(field, "rbf_active", None)
        if rbf_active is not None and not bool(rbf_active) and step + 1 >= self.rbf_warmup_steps:
            field.activate_rbf(torch.Generator().manual_seed(field.config.get("seed", 0)))

    def render_test(self, field, index: int) -> dict:
        view = self.test
        return render_view(field, view.poses[index], view.intrinsics[index], view.width, view.height, self.step_size)

    def evaluate(self, field) -> dict:
        """Mean PSNR over the periodic evaluation views."""
        values = [psnr(self.render_test(field, i)["rgb"], self.test.rgb_on_white(i)) for i in self.eval_views]
        return {"psnr": sum(values) / len(values)} if values else {}

    def final_metrics(self, field, on_view=None, lpips=None) -> dict:
        """PSNR and SSIM (and LPIPS if given) of every test view, and their means.

        Args:
            on_view: optional callback ``(index, rendered dict)`` (e.g. to save renders).
            lpips: optional distance ``(image, target)`` -> float on (H, W, 3)
                images in [0, 1] (:func:`rbfield.lpips_optional.load_lpips`).
        """
        per_view = []
        for index in range(self.test.count):
            rendered = self.render_test(field, index)
            target = self.test.rgb_on_white(index)
            scores = {
                "view": self.test.names[index],
                "psnr": psnr(rendered["rgb"], target),
                "ssim": ssim(rendered["rgb"], target),
            }
            if lpips is not None:
                scores["lpips"] = lpips(rendered["rgb"], target)
            per_view.append(scores)
            if on_view is not None:
                on_view(index, rendered)
        means = {key: sum(v[key] for v in per_view) / len(per_view) for key in per_view[0] if key != "view"}
        return {**means, "per_view": per_view}
