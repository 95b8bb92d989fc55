"""Fields: Field = encoding + decoder, scene fields, and the one typed preset registry.

Public names are imported on first use; :mod:`rbfield.fields.names` lists the presets of each task
without loading PyTorch (the command line's help shows them).
"""

from importlib import import_module

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


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rbfield.fields' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
