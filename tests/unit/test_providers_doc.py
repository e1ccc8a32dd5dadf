"""Every docs/PROVIDERS.md section the code cites exists, so a citation can't rot silently."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CITATION = re.compile(r'docs/PROVIDERS\.md,? \(?"([^"]+)"')


def test_cited_sections_exist() -> None:
    headings = {
        line.lstrip("#").strip()
        for line in (ROOT / "docs" / "PROVIDERS.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("## ")
    }
    cited = {
        (path.relative_to(ROOT).as_posix(), section)
        for folder in ("spnbot", "tests")
        for path in (ROOT / folder).rglob("*.py")
        for section in CITATION.findall(path.read_text(encoding="utf-8"))
    }
    assert len(cited) >= 8
    missing = sorted((path, section) for path, section in cited if section not in headings)
    assert not missing, f"sections cited but absent from docs/PROVIDERS.md: {missing}"


def test_no_code_cites_the_old_contracts_page() -> None:
    old = "docs/" + "CONTRACTS.md"
    offenders = [
        path.relative_to(ROOT).as_posix()
        for folder in ("spnbot", "tests")
        for path in (ROOT / folder).rglob("*.py")
        if old in path.read_text(encoding="utf-8")
    ]
    assert not offenders
