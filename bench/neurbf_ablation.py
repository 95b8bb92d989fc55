"""One NeuRBF setting changed at a time, on a cheap proxy of the 256^2 benchmark.

The proxy is a 128x128 centre crop of a scikit-image photo at a 32k budget
(the same ~0.65 parameters per value as 256^2 at 128k), 2000 steps, 1 thread.
Overrides (JSON) replace fields of the preset's image settings dataclass:

    python bench/neurbf_ablation.py neurbf astronaut 2000 '{"grid_share": 0.0625}'
    python bench/neurbf_ablation.py instant-ngp astronaut 2000

Prints one line: field, photo, overrides, final PSNR (dB), wall seconds.
"""

import json
import sys
import time
from dataclasses import replace

import torch
from skimage import data

import rbfield
from rbfield.fields import default_settings
from rbfield.signals.image import centre_crop, image_to_float


def main() -> int:
    torch.set_num_threads(1)
    preset, photo, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    overrides = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    changes = {key: tuple(value) if isinstance(value, list) else value for key, value in overrides.items()}
    settings = replace(default_settings(preset, "image"), **changes)
    signal = rbfield.ImageSignal(image_to_float(centre_crop(getattr(data, photo)(), 128)))
    field = rbfield.build_field(preset, signal.spec(), "32k", settings=settings)
    field.initialize(signal)
    started = time.time()
    result = rbfield.fit(field, signal, rbfield.TrainConfig(steps=steps, eval_every=steps, progress=False))
    print(preset, photo, overrides, f"{result.history[-1]['psnr']:.2f}", f"{time.time() - started:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
