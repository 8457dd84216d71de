"""The README lists every setting, so an operator can see every knob."""

from __future__ import annotations

from pathlib import Path

from phone_core.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    missing = [n for n in Settings.model_fields if f"PHONE_{n.upper()}" not in README]
    assert missing == []


def test_readme_shows_the_two_commands() -> None:
    assert "make run" in README and "make test" in README
