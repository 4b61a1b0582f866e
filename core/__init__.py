"""Shared foundations of opus2iops: errors, store connections, schemas."""

__version__ = "0.1.0"
