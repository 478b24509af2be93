"""MkDocs hooks for the workbench's site (`mkdocs.yml`: `hooks:`).

- `*` and `_` are plain characters, `**bold**` still works. The docstrings write mathematics as
  plain text (w*, L_n(w*), L_{c,t}); Markdown's single-star and underscore emphasis would turn
  the text between two of them into italics and drop the symbols. The two inline patterns are
  removed from every Markdown instance MkDocs builds (pages and mkdocstrings' docstrings alike).
- The measured tables in `benchmarks/results/` are served as `results/<name>` (Markdown as
  pages, CSV and JSON as files), and the figures' PNGs in `figures/` as `figures/<name>`, so the
  docs link each number to its file, and show each figure, without copying them.
"""

from pathlib import Path

import markdown
from markdown.inlinepatterns import SimpleTagInlineProcessor
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, InclusionLevel

ROOT = Path(__file__).resolve().parents[2]
SERVED = (  # (folder in the repository, where the site serves it, suffixes served)
    (ROOT / "benchmarks" / "results", "results", (".md", ".csv", ".json")),
    (ROOT / "figures", "figures", (".png",)),
)


class PlainEmphasis(markdown.Extension):
    def extendMarkdown(self, md):  # the name Markdown's API calls
        for name in ("em_strong", "em_strong2"):
            if name in md.inlinePatterns:
                md.inlinePatterns.deregister(name)
        md.inlinePatterns.register(SimpleTagInlineProcessor(r"(\*{2})(.+?)\1", "strong"), "plain_strong", 60)


@event_priority(100)
def on_config(config):
    config.markdown_extensions.append(PlainEmphasis())
    return config


def on_files(files, config):
    for folder, served_as, suffixes in SERVED:
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.suffix in suffixes:
                files.append(File.generated(config, f"{served_as}/{path.name}", abs_src_path=str(path),
                                            inclusion=InclusionLevel.NOT_IN_NAV))
    return files
