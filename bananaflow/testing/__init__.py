"""Test doubles a user can run too: the Nano Banana simulator (a real HTTP server) and an
in-memory image store for benchmarks.
"""
