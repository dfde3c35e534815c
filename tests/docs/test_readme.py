"""The README: its two quickstart commands (CI runs the test one verbatim), its size."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def quickstart_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_readme_quickstart_has_exactly_two_commands() -> None:
    main, tests = quickstart_commands()
    assert "examples/quickstart.py" in main
    assert "pytest" in tests
    assert (ROOT / "examples" / "quickstart.py").exists()
    # What pip cannot install (Chromium, PostgreSQL) is provisioned first.
    assert tests.startswith("bash tests/provision.sh && ")
    assert (ROOT / "tests" / "provision.sh").exists()


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    _, tests = quickstart_commands()
    ci_lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert tests in ci_lines


def test_the_readme_fits_on_a_few_screens_with_a_short_section_per_capability() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    tour = readme.split("## A tour", 1)[1].split("\n## ", 1)[0]
    sections = re.split(r"^### ", tour, flags=re.MULTILINE)[1:]
    names = [s.splitlines()[0] for s in sections]
    assert names == [
        "Chat and streaming",
        "Citations",
        "Sessions",
        "Structured output",
        "Agents",
        "Retriever",
        "Ingestion",
        "The web page",
        "Serving and Postgres",
        "The emulator",
    ]
    for section in sections:
        body = section.split("\n", 1)[1].strip("\n").splitlines()
        assert len(body) <= 15, f"{section.splitlines()[0]}: {len(body)} lines"
        pages = re.findall(r"\]\((docs/[^)#]+\.md)", section)
        assert pages, f"{section.splitlines()[0]} links no docs page"
        assert all((ROOT / page).exists() for page in pages), pages
