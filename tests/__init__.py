"""The test suite. The shared helpers' asserts are rewritten as in test modules, so a failure in
a shared check (e.g. tests/support/fuzz.py) shows the values compared."""

import pytest

pytest.register_assert_rewrite("tests.support")
