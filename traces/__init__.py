"""Trace recorder and trace runtime (DESIGN §12)."""
