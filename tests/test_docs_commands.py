"""Every ``cryptolake`` command the README and the docs show exists, with every option they use, so
a renamed command or flag cannot leave the documentation behind."""

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from cryptolake_assets.cli import main

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").rglob("*.md"))]
COMMAND = re.compile(r"cryptolake ([a-z]+)((?: +\[?--[a-z-]+(?:[ =][^\s\]`|]+)?\]?)*)")


def documented_commands() -> dict[str, set[str]]:
    """{subcommand: options} over every page."""
    found: dict[str, set[str]] = {}
    for page in PAGES:
        for name, options in COMMAND.findall(page.read_text()):
            found.setdefault(name, set()).update(re.findall(r"--[a-z-]+", options))
    return found


def test_the_docs_show_the_commands():
    assert {"demo", "backfill", "ui", "serve", "dashboard", "doctor", "summary", "collect"} <= set(
        documented_commands()
    )


@pytest.mark.parametrize("name", sorted(documented_commands()))
def test_documented_command_and_options_exist(name):
    assert name in main.commands, f"the docs show `cryptolake {name}`, which does not exist"
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0, result.output
    for option in sorted(documented_commands()[name]):
        assert option in result.output, f"the docs show `cryptolake {name} {option}`, which --help does not list"
