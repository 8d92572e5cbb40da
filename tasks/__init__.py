"""Thin Prefect tasks over the bananaflow engine."""
