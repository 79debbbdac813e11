"""The repository stands on its own: every section reference in code and docs points at a section of
a document inside the repository, and the architecture page names only modules that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [*ROOT.glob("emulator/**/*.py"), *ROOT.glob("emulator/**/*.js"), *ROOT.glob("tests/**/*.py"),
           ROOT / "README.md", *ROOT.glob("docs/*.md")]
COMPAT_REF = re.compile(r"docs/compatibility\.md §(\d+)")


def sections(doc: Path) -> set[str]:
    return set(re.findall(r"^## (\d+)\. ", doc.read_text(encoding="utf-8"), re.M))


def test_no_reference_points_outside_the_repository():
    outside = re.compile(r"\b(contract|facts|anchors) ?§|design\.md|captchala-facts|emulator-contract")
    found = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
             for path in SOURCES if path.name != "test_docs.py"
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if outside.search(line)]
    assert not found, "\n".join(found)


def test_every_compatibility_reference_names_an_existing_section():
    known = sections(ROOT / "docs" / "compatibility.md")
    assert known == {str(n) for n in range(1, len(known) + 1)}, "numbered sections 1..N"
    refs = {(path.relative_to(ROOT), n) for path in SOURCES for n in COMPAT_REF.findall(path.read_text("utf-8"))}
    assert refs, "the code points at docs/compatibility.md"
    assert {ref for ref in refs if ref[1] not in known} == set()


def test_the_architecture_page_names_only_modules_that_exist():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for name in set(re.findall(r"`((?:domain|web|store|faults)/\w+\.py)`", text)):
        assert (ROOT / "emulator" / name).exists(), name
    for layer in ("domain/", "faults/", "store/", "web/", "adapters"):
        assert layer in text
