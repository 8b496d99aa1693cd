"""RE2 (the violation lister) and the Rust regex crate (the fast validator) agree on what the
patterns of a schema match, so the two validators agree on the verdict."""

from __future__ import annotations

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from city_os.registry import patterns

PATTERNS = [
    r"^\d{3}-?\d{4}$",
    r"^[\w\-\.]+$",
    r"^E\d{12}\w$",
    r"(a+)+$",
    r"^([01]\d|2[0-4]):[0-5]\d(:[0-5]\d)?$",
    r"^\p{L}+$",
    r"colou?r",
]
TEXT = st.text(alphabet=st.sampled_from("aE0123456789-_.:!é٣xyz colur"), max_size=20)


@pytest.mark.parametrize("pattern", PATTERNS)
@settings(max_examples=150, deadline=None)
@given(text=TEXT)
def test_re2_and_rust_agree(pattern: str, text: str) -> None:
    rust = jsonschema_rs.validator_for(
        {"pattern": pattern}, pattern_options=jsonschema_rs.RegexOptions()
    )
    assert patterns.search(pattern, text) == rust.is_valid(text)


def test_ascii_classes_as_in_ecma_262() -> None:
    assert not patterns.search(r"^\d+$", "٣")  # Python's re would say yes
    assert patterns.search(r"^\d+$", "3")


def test_regex_format_on_re2() -> None:
    assert patterns.is_regex("^a+$")
    assert not patterns.is_regex("(a)\\1")
    assert patterns.is_regex(3)
