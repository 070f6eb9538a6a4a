"""Shared test configuration."""

# pytester runs the conformance kit against deliberately broken plugins (tests/testing).
pytest_plugins = ["pytester"]

# Fixture distributions carry their own tests; tests/testing runs them in a subprocess.
collect_ignore = ["fixtures"]
