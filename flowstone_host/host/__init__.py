"""The host daemon: lifecycle, reload transaction, watcher, admin HTTP API, metrics, logs."""
