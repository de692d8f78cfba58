"""hullscan: a self-hosted container image security scanner."""

__version__ = "0.1.0"
