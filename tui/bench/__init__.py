"""Benchmarks of the TUI: app CPU and start-up, one ladder frame."""
