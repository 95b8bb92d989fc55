"""Shapes: mesh and point-cloud I/O, marching cubes, shape metrics, previews."""
