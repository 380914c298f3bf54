"""Benchmarks for `make bench` (`python -m bench`): measurements, not tests.

Each entry measures a subject and a baseline in the same run and reports the ratio; nothing
here asserts on timings. Entries register themselves in `bench.registry`.
"""
