"""The ``bananaflow`` command line: the edge where the engine meets Prefect (flows are imported
only by commands that run them).
"""
