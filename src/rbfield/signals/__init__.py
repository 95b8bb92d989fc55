"""Signals: what a field is fitted to (image now; SDF and radiance plug in beside it)."""
