"""Gemini Batch mode behind the same flow: half price, results within 24 hours.

``api`` speaks the Files and Batch routes; ``jsonl`` builds and reads the files; ``ledger``
records batches durably so a crashed run resumes them instead of paying again; ``runner``
ties these to the shared parser and the lander. Choosing realtime vs batch and sizing the
batches happen while planning (``bananaflow.planning.mode``, ``bananaflow.planning.batch_sizing``).

The public API is its modules, imported by name (``from bananaflow.batch.runner import
BatchRunner``): this file imports nothing, so importing one loads only what it needs.
"""

__all__ = ["api", "gcs_staging", "jsonl", "ledger", "runner", "vertex_api"]
