"""Making one image: dispatch along the fallback chain, retries, the lander that stores a
paid-for image, and the pipeline that takes one work item through all of it.

The public API is its modules other than ``dispatch`` (the pipeline's own), imported by name
(``pipeline.ItemProcessor``, ``retry.RetryPolicy`` ...); this file imports nothing, so
importing one loads only what it needs.
"""

__all__ = ["gate", "lander", "pipeline", "pump", "retry"]
