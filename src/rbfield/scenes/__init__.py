"""Radiance fields from posed photos (NeRF Blender format): data, rays, rendering, fields."""
