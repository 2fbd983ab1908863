"""Callboard: a developer portal that lives in chat."""

__version__ = "0.1.0"
__all__ = ["__version__"]
