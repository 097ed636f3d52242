"""Where upload bytes live: S3 parts and the node-local tail."""

from ..exceptions import TusTailMissing
from .s3 import S3Backend, get_storage, part_size_for
from .tail import Tail, open_tail, tus_tail_path

__all__ = ["S3Backend", "Tail", "TusTailMissing", "get_storage", "open_tail", "part_size_for", "tus_tail_path"]
