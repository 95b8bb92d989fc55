"""Defaults of the image signal that the command line's help shows, here without heavy imports
(:mod:`rbfield.signals.image` uses them; ``rbfield --help`` must not load PyTorch)."""

#: Pixels per training step. NeuRBF trains on 2**18 pixels per batch on a GPU. On a CPU with a time limit,
#: 2**16 did better for both neurbf and instant-ngp on the 2560-pixel photos (BENCHMARKS.md, "Large photos at
#: equal time"). An image of at most this many pixels, such as a 256x256 crop, uses all of them every step.
DEFAULT_BATCH = 2**16
