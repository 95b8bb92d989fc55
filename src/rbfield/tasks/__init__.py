"""Tasks: the jobs and commands of each kind of signal (image, sdf, nerf), on shared training flags."""
