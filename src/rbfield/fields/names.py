"""The preset names of each task, in registry order, without importing the presets.

The command line lists them in its help; :data:`rbfield.fields.registry.PRESETS` is the registry
they name (a test keeps the two in step).
"""

#: Signal task -> the names of the presets that have settings for it.
PRESET_NAMES: dict[str, tuple[str, ...]] = {
    "image": ("neurbf", "instant-ngp", "siren", "ffn"),
    "sdf": ("neurbf", "instant-ngp", "siren", "ffn", "triplane"),
    "radiance": ("neurbf", "instant-ngp", "tensorf"),
}
