"""README.ja.md stays in step with README.md: the same settings rows (names and default values),
the same make targets and the same CLI commands — and every command the CLI has is in both."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from city_os.__main__ import main

ROOT = Path(__file__).resolve().parents[2]
EN = (ROOT / "README.md").read_text(encoding="utf-8")
JA = (ROOT / "README.ja.md").read_text(encoding="utf-8")

_SETTING_ROW = re.compile(r"^\| `(CITYOS_[A-Z0-9_]+)` \| ([^|]*) \|", re.MULTILINE)
_MAKE_ROW = re.compile(r"^\| `make ([a-z-]+)` \|", re.MULTILINE)
_COMMAND = re.compile(r"city-os\s+([a-z][a-z-]*)")


def settings(text: str) -> dict[str, set[str]]:
    """Each settings row's variable with the code spans of its default (the prose around them
    is translated)."""
    return {
        name: set(re.findall(r"`([^`]+)`", default)) for name, default in _SETTING_ROW.findall(text)
    }


def cli_commands(capsys: pytest.CaptureFixture[str]) -> set[str]:
    """The subcommands of ``city-os``, from its own argument parser."""
    with pytest.raises(SystemExit):
        main(["--help"])
    usage = capsys.readouterr().out
    found = re.search(r"\{([a-z,-]+)\}", usage)
    assert found, usage
    return set(found.group(1).split(","))


def test_same_settings_rows_and_defaults() -> None:
    en, ja = settings(EN), settings(JA)
    assert sorted(set(en) - set(ja)) == [], "settings missing from README.ja.md"
    assert sorted(set(ja) - set(en)) == [], "settings in README.ja.md only"
    differing = {name: (en[name], ja[name]) for name in en if en[name] != ja[name]}
    assert differing == {}, "defaults differ between README.md and README.ja.md"


def test_same_make_targets() -> None:
    en = set(_MAKE_ROW.findall(EN))
    assert en, "README.md has no make targets table"
    assert set(_MAKE_ROW.findall(JA)) == en


def test_same_cli_commands(capsys: pytest.CaptureFixture[str]) -> None:
    commands = cli_commands(capsys)
    assert {"serve", "migrate"} <= commands
    for name, text in (("README.md", EN), ("README.ja.md", JA)):
        mentioned = set(_COMMAND.findall(text)) & commands
        assert sorted(commands - mentioned) == [], f"CLI commands not in {name}"


def test_links_to_the_japanese_access_control_model() -> None:
    assert "(docs/access-control.ja.md)" in JA
    assert "(README.ja.md)" in EN
