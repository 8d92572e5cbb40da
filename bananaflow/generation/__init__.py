"""Making one image: dispatch along the fallback chain, retries, checks of the bytes, and
marketplace finishing.
"""
