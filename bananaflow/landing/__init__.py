"""Landing paid-for images: the S3 store, the local spool, key claims, and the lander that
turns an image into a manifest row.
"""
