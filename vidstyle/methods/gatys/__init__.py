"""Gatys-style optimization (settings, objective, loop, stylizer)."""
