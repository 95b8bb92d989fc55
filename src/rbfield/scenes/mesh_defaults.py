"""Defaults of scene meshes that the command line's help shows, here without heavy imports
(:mod:`rbfield.scenes.mesh` uses them; ``rbfield --help`` must not load PyTorch)."""

#: Iso-level of the exported surface, density in 1 / scene unit. At the training
#: marching step (0.0090 in the default box) a sample of this density absorbs
#: 1 - exp(-10 * 0.0090) = 8.6 % of the light.
DEFAULT_LEVEL = 10.0
