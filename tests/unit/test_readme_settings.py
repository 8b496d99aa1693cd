"""Every setting is documented: config.SETTINGS describes each Settings field, README lists it."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from city_os.config import SETTINGS, Settings

README = Path(__file__).resolve().parents[2] / "README.md"
FIELDS = [f.name for f in fields(Settings)]
# Read by scripts/ and tests/ only, not by the broker; documented in the README all the same.
SCRIPT_ONLY = {"CITYOS_TEST_DATABASE_URL", "CITYOS_DEV_KAFKA_PORT", "CITYOS_DEV_RUN_DIR"}


@pytest.fixture(scope="module")
def readme_rows() -> set[str]:
    """CITYOS_* names that head a row of a README table."""
    text = README.read_text(encoding="utf-8")
    return set(re.findall(r"^\| `(CITYOS_[A-Z0-9_]+)` \|", text, flags=re.MULTILINE))


@pytest.mark.parametrize("name", FIELDS)
def test_setting_has_a_meaning(name: str) -> None:
    assert SETTINGS.get(name, "").strip(), f"config.SETTINGS has no meaning for {name!r}"


def test_settings_describes_no_unknown_field() -> None:
    assert set(SETTINGS) <= set(FIELDS)


@pytest.mark.parametrize("name", FIELDS)
def test_setting_is_in_readme_table(name: str, readme_rows: set[str]) -> None:
    assert f"CITYOS_{name.upper()}" in readme_rows, f"README.md settings table lacks {name}"


def test_readme_documents_no_stale_setting(readme_rows: set[str]) -> None:
    known = {f"CITYOS_{name.upper()}" for name in FIELDS} | SCRIPT_ONLY
    assert readme_rows <= known
