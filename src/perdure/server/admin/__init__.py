"""Perdure server admin."""
