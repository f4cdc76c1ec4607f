"""Deployer's domain: states, tables, uploads, ports, secrets. Imports neither Flask nor Celery."""

__version__ = "0.1.0"
