"""Catalog input: reading a shop's export into validated rows, its feed presets, and the
reference photos it links to.
"""
