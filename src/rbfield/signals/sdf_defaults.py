"""Defaults of the SDF signal that the command line's help shows, here without heavy imports
(:mod:`rbfield.signals.sdf` uses them; ``rbfield --help`` must not load PyTorch)."""

#: Points per training step. NeuRBF uses 2**18 on a GPU. On a CPU the fit is
#: limited by its number of steps more than by points per step: 12,000 steps of
#: 2**12 (127 s on the dragon) beat 3,000 of 2**14 (85 s) and of 2**15 (241 s)
#: (BENCHMARKS.md, "Shapes").
DEFAULT_BATCH = 2**12
#: Step (domain units) of the central differences that give a point cloud's
#: gradient terms the field's gradient; below neurbf's finest grid cell (1/256)
#: and smallest RBF scale (``RBF_SPACING`` of :mod:`rbfield.signals.sdf`). On trained dragon fields the
#: differences are within 3 % of autograd's gradient (median). They make a
#: fit ~1.2-1.3x as long as one without gradient terms, against ~1.8-2.3x for
#: a double backward, and gave point clouds a lower normal error (3.38-3.56
#: deg against 3.45-3.85 on three inputs). Steps 1e-4 and 2e-4 gave the same
#: neurbf dragon NAE and a worse instant-ngp one (BENCHMARKS.md, "Shapes").
DIFFERENCE_STEP = 5e-4
#: Where a point cloud's normals come from (:mod:`rbfield.geometry.raw_points`): the file's if it has
#: them, else estimated ("auto"); the file's only ("given"); estimated even if the file has some ("estimate").
NORMAL_SOURCES = ("auto", "given", "estimate")
#: What becomes of a point cloud's outliers (:func:`rbfield.geometry.point_cleaning.outlier_mask`): removed
#: with a counted warning ("remove", the default), or kept, for clouds known to be clean ("keep").
OUTLIER_MODES = ("remove", "keep")
#: Whether a noisy point cloud is denoised before the fit (:mod:`rbfield.geometry.raw_points`): when its
#: measured noise calls for it ("auto", the default), or never ("off").
DENOISE_MODES = ("auto", "off")
#: Noise (share of the bounding-box diagonal, :func:`rbfield.geometry.point_cleaning.noise_level`) above
#: which "auto" denoises. Clean scans read 0.0001-0.0005 at 20,000 points (curvature adds to it); Gaussian
#: noise of 0.0025 of the diagonal reads 0.0022.
SMOOTHING_NOISE = 2e-3
#: The values of ``--surface``: keep the field's closed zero set, or trim it to the input
#: (:mod:`rbfield.geometry.open_surface`).
SURFACE_MODES = ("closed", "open")
