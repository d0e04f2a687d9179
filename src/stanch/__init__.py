"""Stanch."""
