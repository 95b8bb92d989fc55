"""Fields: Field = encoding + decoder, scene fields, and the one typed preset registry.

Public names are imported on first use; :mod:`rbfield.fields.names` lists the presets of each task
without loading PyTorch (the command line's help shows them).
"""

from rbfield.lazy import lazy_exports

#: Public name -> the module that defines it.
_EXPORTS = {
    "Field": "rbfield.fields.field",
    "FieldBase": "rbfield.fields.field",
    "RadianceField": "rbfield.fields.radiance",
    "PRESETS": "rbfield.fields.registry",
    "build_field": "rbfield.fields.registry",
    "default_settings": "rbfield.fields.registry",
    "field_from_config": "rbfield.fields.registry",
    "parse_budget": "rbfield.fields.registry",
    "presets_for": "rbfield.fields.registry",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
