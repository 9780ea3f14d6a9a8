"""Perdure server ingress."""
