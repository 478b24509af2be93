"""MkDocs hooks for the workbench's site (`mkdocs.yml`: `hooks:`).

- `*` and `_` are plain characters, `**bold**` still works. The docstrings write mathematics as
  plain text (w*, L_n(w*), L_{c,t}); Markdown's single-star and underscore emphasis would turn
  the text between two of them into italics and drop the symbols. The two inline patterns are
  removed from every Markdown instance MkDocs builds (pages and mkdocstrings' docstrings alike).
- The measured tables in `benchmarks/results/` are served as `results/<name>` (Markdown as
  pages, CSV and JSON as files), so the docs link each number to its file without copying it.
"""

from pathlib import Path

import markdown
from markdown.inlinepatterns import SimpleTagInlineProcessor
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, InclusionLevel

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


class PlainEmphasis(markdown.Extension):
    def extendMarkdown(self, md):  # noqa: N802 (Markdown's API)
        for name in ("em_strong", "em_strong2"):
            if name in md.inlinePatterns:
                md.inlinePatterns.deregister(name)
        md.inlinePatterns.register(SimpleTagInlineProcessor(r"(\*{2})(.+?)\1", "strong"), "plain_strong", 60)


@event_priority(100)
def on_config(config):
    config.markdown_extensions.append(PlainEmphasis())
    return config


def on_files(files, config):
    for path in sorted(RESULTS.iterdir()):
        if path.is_file() and path.suffix in (".md", ".csv", ".json"):
            files.append(File.generated(config, f"results/{path.name}", abs_src_path=str(path),
                                        inclusion=InclusionLevel.NOT_IN_NAV))
    return files
