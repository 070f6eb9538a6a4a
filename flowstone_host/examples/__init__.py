"""Example callables used by the demo pipeline in ``plugins.d/``."""
