"""Perdure cli."""
