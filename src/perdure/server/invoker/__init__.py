"""Perdure server invoker."""
