"""What a run reports: the summary, progress counters, the gallery and write-back feeds
(the manifest itself is ``bananaflow.landing.manifest``).

The public API is its modules, imported by name; this file imports nothing, so the CLI's
progress bar does not load Pillow for the gallery.
"""

__all__ = ["agreement", "gallery", "markdown_safe", "progress", "summary", "writeback"]
