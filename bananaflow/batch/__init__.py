"""Gemini Batch mode behind the same flow: half price, results within 24 hours.

``api`` speaks the Files and Batch routes; ``jsonl`` builds and reads the files; ``sizing``
caps each batch so its results stay retrievable; ``ledger`` records batches durably so a
crashed run resumes them instead of paying again; ``runner`` ties these to the shared
parser and ``ImageLander``; ``choice`` decides realtime vs batch and estimates both.
"""
from bananaflow.batch.choice import BatchEstimate, ModeChoice, choose_mode, estimate_batch

__all__ = ["BatchEstimate", "ModeChoice", "choose_mode", "estimate_batch"]
