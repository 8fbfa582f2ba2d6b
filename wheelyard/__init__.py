"""Wheelyard: a self-hosted private Python package repository."""

__version__ = "0.1.0"
