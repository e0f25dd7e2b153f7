"""A generated part of a doc page, between two HTML comments: what `--write` replaces and a test compares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GeneratedSection:
    doc: Path
    start: str
    end: str

    def read(self, text: str | None = None) -> str:
        """The section as the doc holds it (the page's text, or the file's)."""
        text = self.doc.read_text() if text is None else text
        begin, finish = text.index(self.start) + len(self.start), text.index(self.end)
        return text[begin:finish].strip("\n") + "\n"

    def write(self, content: str) -> None:
        text = self.doc.read_text()
        begin, finish = text.index(self.start) + len(self.start), text.index(self.end)
        self.doc.write_text(text[:begin] + "\n" + content + text[finish:])
