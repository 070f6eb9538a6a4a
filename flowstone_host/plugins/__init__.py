"""Built-in plugins, registered through the project's own entry points like any other."""
