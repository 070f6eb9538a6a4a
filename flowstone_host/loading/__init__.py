"""How plugins arrive: entry-point discovery, version checks, and the sandbox (probe, isolation)."""
