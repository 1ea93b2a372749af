"""Interop tests: every example spec and starter leaves through both converters (no list
of exceptions)."""
