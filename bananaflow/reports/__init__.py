"""What a run reports: the manifest, the summary, progress counters, the gallery, earlier
runs' manifests, and write-back feeds.
"""
