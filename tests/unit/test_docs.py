"""The docs stay true to the tree: the layout table of docs/architecture.md names every file
under layers/, functions/ and local/; the README's commands table names every `make` command;
every relative link of the README and docs/ leads to a file, and to a heading where it names
one; the README stays short."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from local.template import ROOT

ARCHITECTURE = ROOT / "docs" / "architecture.md"
README = ROOT / "README.md"
DOCUMENTS = [README, *sorted((ROOT / "docs").glob("*.md"))]
LAID_OUT = ("layers", "functions", "local")  # the folders whose every file the layout names

_FENCE = re.compile(r"^```.*?^```", re.M | re.S)
_CODE = re.compile(r"`([^`\n]+)`")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6} (.+)$", re.M)


def _section(text: str, heading: str) -> str:
    """From `heading` (a level-2 heading) to the next level-2 heading."""
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _first_cells(section: str) -> list[str]:
    """The first cell of each table row, header and separator rows left out."""
    rows = [line for line in section.splitlines() if line.startswith("|")]
    cells = [row.split("|")[1].strip() for row in rows]
    return [c for c in cells if c not in ("path", "command") and not set(c) <= {"-", ":"}]


def _tracked(*folders: str) -> set[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--", *folders], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(listed.stdout.split())


def _laid_out() -> list[str]:
    """Every path under LAID_OUT that the layout tables name (in their first column)."""
    cells = _first_cells(_section(ARCHITECTURE.read_text(), "## Layout"))
    return [path for cell in cells for path in _CODE.findall(cell) if path.startswith(LAID_OUT)]


def test_the_layout_names_every_file_under_layers_functions_and_local():
    tracked = _tracked(*LAID_OUT)
    assert len(tracked) > 50, "git ls-files found too little: is this a git checkout?"
    named = _laid_out()
    missing = sorted(tracked - set(named))
    assert not missing, f"docs/architecture.md, Layout: add a row for {missing}"


def test_the_layout_names_only_files_that_exist_once_each():
    named = _laid_out()
    assert len(named) == len(set(named)), "a file is named twice"
    gone = sorted(set(named) - _tracked(*LAID_OUT))
    assert not gone, f"docs/architecture.md, Layout: no such tracked file {gone}"


def _makefile_commands() -> set[str]:
    """The targets `make help` lists: those with a `## ` description."""
    makefile = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z-]+):.*## ", makefile, re.M))


def test_the_readme_lists_every_make_command_once():
    cells = _first_cells(_section(README.read_text(), "## Commands"))
    listed = [_CODE.findall(cell)[0].split()[1] for cell in cells]
    assert len(listed) == len(set(listed)), "a command has two rows"
    assert set(listed) == _makefile_commands()


def test_the_readme_is_short():
    assert len(README.read_text().splitlines()) <= 300


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text without markup, lower case, punctuation dropped,
    spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(document: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for heading in _HEADING.findall(_FENCE.sub("", document.read_text())):
        base = slug(heading)
        found.add(f"{base}-{seen[base]}" if base in seen else base)
        seen[base] = seen.get(base, 0) + 1
    return found


def links(document: Path) -> list[str]:
    """The relative link targets of a document, code blocks and code spans left out."""
    text = _CODE.sub("", _FENCE.sub("", document.read_text()))
    return [t for t in _LINK.findall(text) if not re.match(r"[a-z]+:", t)]


def test_slugs_follow_github():
    assert slug("Tokens (`make tokens`)") == "tokens-make-tokens"
    assert slug("A request's path") == "a-requests-path"
    assert slug("Reading the trail: `make audit`") == "reading-the-trail-make-audit"
    assert slug("Upgrading from a release that keyed the audit trail with `audit_pepper`") == (
        "upgrading-from-a-release-that-keyed-the-audit-trail-with-audit_pepper"
    )


def test_every_relative_link_leads_to_a_file_and_its_heading():
    broken = []
    for document in DOCUMENTS:
        found = links(document)
        assert found, f"{document.name}: no links found, is the pattern right?"
        for target in found:
            path, _, anchor = target.partition("#")
            where = (document.parent / path).resolve() if path else document
            if not where.exists():
                broken.append(f"{document.name}: {target} (no such file)")
            elif anchor and anchor not in anchors(where):
                broken.append(f"{document.name}: {target} (no such heading)")
    assert not broken, broken


def test_no_document_points_outside_the_repository():
    for document in DOCUMENTS:
        for target in links(document):
            path = target.partition("#")[0]
            if path:
                assert (document.parent / path).resolve().is_relative_to(ROOT), target
