"""The one report renderer: a list of blocks (headings, paragraphs, tables, images; built by
:mod:`analysis.document`) rendered to Markdown (``report.md``, a published ``README.md``) and to a
self-contained-layout HTML page (``report.html``) that references the same PNG files."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.tables import fmt, markdown_table


@dataclass(frozen=True)
class Block:
    """One report element. ``kind``: "h1" | "h2" | "p" | "list" | "table" | "image"."""

    kind: str
    text: str = ""
    items: tuple[str, ...] = ()
    table: pd.DataFrame | None = None
    path: str = ""


def to_markdown(blocks: list[Block]) -> str:
    """The blocks as GitHub Markdown (image paths relative to the report)."""
    out: list[str] = []
    for b in blocks:
        if b.kind == "h1":
            out.append(f"# {b.text}\n")
        elif b.kind == "h2":
            out.append(f"## {b.text}\n")
        elif b.kind == "p":
            out.append(f"{b.text}\n")
        elif b.kind == "list":
            out.append("\n".join(f"- {item}" for item in b.items) + "\n")
        elif b.kind == "table":
            out.append(markdown_table(b.table if b.table is not None else pd.DataFrame()))
        elif b.kind == "image":
            out.append(f"![{b.text}]({b.path})\n")
        else:
            raise ValueError(f"kind={b.kind!r}: unknown report block")
    return "\n".join(out)


_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


def inline_html(text: str) -> str:
    """The Markdown a report's text uses (``code``, **bold**, *italic*, [links](url)) as escaped HTML."""
    out = html.escape(text, quote=False)
    out = _CODE.sub(r"<code>\1</code>", out)
    out = _BOLD.sub(r"<strong>\1</strong>", out)
    out = _ITALIC.sub(r"<em>\1</em>", out)
    return _LINK.sub(lambda m: f'<a href="{html.escape(m.group(2))}">{m.group(1)}</a>', out)


def _html_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "<p>(no rows)</p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{inline_html(fmt(v.item() if hasattr(v, 'item') else v))}</td>" for v in row)
        + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = (
    "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;font-size:0.85em;margin:0.5em 0}"
    "th,td{border:1px solid #ccc;padding:2px 6px;text-align:left}th{background:#f2f2f2}"
    "img{max-width:100%;border:1px solid #ddd}"
)


def to_html(blocks: list[Block], title: str) -> str:
    """The blocks as one HTML page (no scripts, no external CSS; images by relative path)."""
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>',
        f"<style>{_CSS}</style></head><body>",
    ]
    for b in blocks:
        if b.kind in ("h1", "h2"):
            parts.append(f"<{b.kind}>{inline_html(b.text)}</{b.kind}>")
        elif b.kind == "p":
            parts.append(f"<p>{inline_html(b.text)}</p>")
        elif b.kind == "list":
            parts.append("<ul>" + "".join(f"<li>{inline_html(i)}</li>" for i in b.items) + "</ul>")
        elif b.kind == "table":
            parts.append(_html_table(b.table if b.table is not None else pd.DataFrame()))
        elif b.kind == "image":
            parts.append(f'<figure><img src="{html.escape(b.path)}" alt="{html.escape(b.text)}"></figure>')
        else:
            raise ValueError(f"kind={b.kind!r}: unknown report block")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(blocks: list[Block], folder: Path, title: str) -> list[Path]:
    """Write ``report.md`` and ``report.html`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    md, page = folder / "report.md", folder / "report.html"
    md.write_text(to_markdown(blocks), encoding="utf-8")
    page.write_text(to_html(blocks, title), encoding="utf-8")
    return [md, page]
