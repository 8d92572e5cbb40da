"""Planning a run: job specs, prompts, work items and their keys, delta runs, shards, and the
price/time estimate; everything decided before any call is made.
"""
