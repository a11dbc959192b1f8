"""Rapport: a privacy-first CRM."""

__version__ = "0.1.0"
