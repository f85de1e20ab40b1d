"""Synthetic open-set scenes: object sources, layouts, rendering, dataset writing."""
