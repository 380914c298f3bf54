"""The API fuzzed on Postgres (tests/support/fuzz.py holds the tests, shared with the other database)."""

from tests.support.fuzz import (
    target_fixture,
    test_fuzz_queries_and_mutations,
    test_fuzz_subscriptions,
)

target = target_fixture("postgres")

__all__ = ["target", "test_fuzz_queries_and_mutations", "test_fuzz_subscriptions"]
