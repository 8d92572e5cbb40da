"""Gemini Batch mode behind the same flow: half price, results within 24 hours.

``api`` speaks the Files and Batch routes; ``jsonl`` builds and reads the files; ``ledger``
records batches durably so a crashed run resumes them instead of paying again; ``runner``
ties these to the shared parser and the lander. Choosing realtime vs batch and sizing the
batches happen while planning (``bananaflow.planning.mode``, ``bananaflow.planning.batch_sizing``).
"""
