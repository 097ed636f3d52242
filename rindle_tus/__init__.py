"""Resumable uploads over the tus 1.0.0 protocol, streamed into S3."""

__version__ = "0.1.0"
