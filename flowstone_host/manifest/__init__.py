"""Manifests: positioned safe YAML, JSON Schema, cross-references, plugin config, the model."""
