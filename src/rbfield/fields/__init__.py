"""Fields: Field = encoding + decoder, scene fields, and the one typed preset registry."""

from rbfield.fields.field import Field, FieldBase
from rbfield.fields.radiance import RadianceField
from rbfield.fields.registry import (
    PRESETS,
    build_field,
    default_settings,
    field_from_config,
    parse_budget,
    presets_for,
)

__all__ = [
    "PRESETS",
    "Field",
    "FieldBase",
    "RadianceField",
    "build_field",
    "default_settings",
    "field_from_config",
    "parse_budget",
    "presets_for",
]
