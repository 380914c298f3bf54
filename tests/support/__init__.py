"""Helpers shared by the tests (tests/__init__.py has their asserts rewritten)."""
