"""Perdure sdk."""
