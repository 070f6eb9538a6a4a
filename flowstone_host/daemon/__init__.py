"""The daemon around a Host: watcher, admin API and its client, logs, signals."""
