"""Shared helpers: validation, torch devices and dtypes, parallelism."""
