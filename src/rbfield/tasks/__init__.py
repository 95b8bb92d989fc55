"""Tasks: the jobs of each kind of signal (image, sdf, nerf) and the functions behind their commands
(whose flags :mod:`rbfield.commands` registers), on shared training flags."""
