"""Argus composition root: configuration, the runner that wires the stages, and the CLI."""

__version__ = "0.1.0"
