"""Landing paid-for images: the S3 store, object keys, the local spool, key claims, blocked
markers, the manifest and earlier runs' manifests, and marketplace finishing.

The public API is its modules, imported by name (``storage.ImageStore``, ``manifest.ManifestRow``,
``keys.key_stem`` ...); this file imports nothing, so importing one loads only what it needs.
"""

__all__ = [
    "blocked", "claims", "csv_safe", "finishing", "keys", "manifest", "manifest_stream", "object_meta",
    "outcome", "output_presets", "review_log", "review_store", "rowlog", "run_history", "spool", "storage", "verdict",
]
