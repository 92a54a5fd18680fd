"""casemsg — a self-hosted, case-based SMS and email messaging engine."""

__version__ = "0.1.0"
