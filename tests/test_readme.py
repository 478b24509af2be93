"""The README is a front door: at most 250 lines, and every relative link in it resolves.

The docs site's own links are checked by `mkdocs build --strict` (`make docs`, run by `make test`).
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_README_LINES = 250
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def relative_links(text: str) -> list[str]:
    return [target for target in LINK.findall(text) if not re.match(r"[a-z]+:", target)]


def test_the_readme_is_at_most_250_lines():
    num_lines = len(README.read_text().splitlines())
    assert num_lines <= MAX_README_LINES, f"README.md has {num_lines} lines, allowed {MAX_README_LINES}"


def test_every_relative_link_in_the_readme_resolves():
    links = relative_links(README.read_text())
    assert links, "no relative links found: the pattern no longer matches the README's links"
    missing = [target for target in links if not (ROOT / target.split("#")[0]).exists()]
    assert not missing, f"README.md links to missing files: {missing}"
