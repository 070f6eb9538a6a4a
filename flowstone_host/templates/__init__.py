"""Plain template files ``flowstone-host new-plugin`` fills in (package data, not code)."""
