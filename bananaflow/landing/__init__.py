"""Landing paid-for images: the S3 and Cloud Storage stores, object keys, the local spool, key claims, blocked
markers, the manifest and earlier runs' manifests, and marketplace finishing.

The public API is its modules, imported by name (``storage.ImageStore``, ``manifest.ManifestRow``,
``keys.key_stem`` ...); this file imports nothing, so importing one loads only what it needs.
"""

__all__ = [
    "blocked", "claims", "csv_safe", "destination", "finishing", "gcs", "keys", "manifest", "manifest_stream",
    "object_meta", "outcome", "output_presets", "review_log", "review_store", "rowlog", "run_history", "spool",
    "storage", "store_errors", "verdict",
]
