"""Sphinx directives that bring the repository's Markdown files into the docs.

myst-parser is not a dependency, and the Markdown we include is simple (the
changelog, the README's commands, the tables that the benchmark scripts write),
so a small converter to reStructuredText is enough. Nothing here is typed by
hand: every table and command on the pages that use these directives is read
from its source file at build time, and Sphinx rebuilds those pages when the
source file changes.

Directives
----------
``.. markdown-include:: PATH``
    The Markdown file converted to reST (headings become sections, or rubrics
    with ``:rubrics:``). ``:skip-title:`` drops the first level-1 heading.
``.. markdown-code-block:: PATH``
    One fenced code block of a Markdown file, selected by ``:section:`` (the
    first block under the heading that starts with this text) and/or
    ``:contains:`` (the first such block containing this text). Fails the
    build when no block matches, so the docs cannot drift from the README.
``.. benchmark-results:: DIR``
    Every ``DIR/*.md`` table written by a benchmark script (falling back to a
    table generated from ``DIR/*.json`` for scripts that write JSON only), each
    under the first line of its script's docstring, with how to regenerate it
    and the environment it was measured in.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

logger = logging.getLogger(__name__)

# -- Markdown -> reST ---------------------------------------------------------------------

_INLINE = re.compile(
    r"(?P<code>`+)(?P<code_text>.+?)(?P=code)"  # `code` (also ``code``)
    r"|\[(?P<link_text>[^\]]+)\]\((?P<url>[^)\s]+)\)"  # [text](url)
    r"|\*\*(?P<strong>[^*]+?)\*\*"  # **strong**
    r"|(?<![\w*])\*(?P<em>[^*\s][^*]*?)\*(?![\w*])"  # *emphasis*
)
_RST_SPECIAL = re.compile(r"([\\`*_|])")
_START_OK = set("-:/'\"<([{")
_END_OK = set("-.,:;!?\\/'\")]}>")


def _escape(text):
    return _RST_SPECIAL.sub(r"\\\1", text)


def _wrap(markup, before, after):
    """Add reST's escaped space where inline markup touches other text."""
    if before and not before.isspace() and before not in _START_OK:
        markup = "\\ " + markup
    if after and not after.isspace() and after not in _END_OK:
        markup = markup + "\\ "
    return markup


def inline(text):
    """Convert Markdown inline markup of one line to reST."""
    out, pos = [], 0
    for m in _INLINE.finditer(text):
        out.append(_escape(text[pos : m.start()]))
        before = text[m.start() - 1] if m.start() else ""
        after = text[m.end()] if m.end() < len(text) else ""
        if m.group("code"):
            code = m.group("code_text").strip()
            markup = f"``{code}``" if code else ""
        elif m.group("url"):
            label = m.group("link_text")
            url = m.group("url")
            if re.match(r"[a-z]+://", url):
                markup = f"`{_escape(label)} <{url}>`__"
            else:  # a path inside the repository: keep the words only
                markup = _escape(label)
        elif m.group("strong"):
            markup = f"**{_escape(m.group('strong'))}**"
        else:
            markup = f"*{_escape(m.group('em'))}*"
        out.append(_wrap(markup, before, after) if markup else "")
        pos = m.end()
    out.append(_escape(text[pos:]))
    return "".join(out)


def _table_cells(line):
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|"):
        line = line[:-1]
    return [cell.strip() for cell in line.split("|")]


def _is_separator(line):
    return bool(re.fullmatch(r"\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*", line))


def _list_table(header, rows):
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        row = row + [""] * (len(header) - len(row))
        for k, cell in enumerate(row[: len(header)]):
            prefix = "   * - " if k == 0 else "     - "
            out.append(prefix + (inline(cell) or "\\ "))
    return out + [""]


_UNDERLINES = {1: "=", 2: "-", 3: "~", 4: "^", 5: '"'}


def markdown_to_rst(text, *, skip_title=False, rubrics=False, level_offset=0):
    """Convert the Markdown subset used in this repository to reST lines.

    Handles ATX headings, paragraphs, bullet and numbered lists (continuation
    lines indented), fenced code blocks, GitHub tables, inline code, links,
    strong and emphasis; HTML comments are dropped. Any other character that
    reST would read as markup is escaped.
    """
    text = re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL)
    lines = text.splitlines()
    out, i, title_skipped = [], 0, False
    while i < len(lines):
        line = lines[i]
        fence = re.match(r"^(\s*)(```+|~~~+)\s*([\w+-]*)", line)
        if fence:
            indent, marker, lang = fence.groups()
            body = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(marker):
                body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
                i += 1
            i += 1  # closing fence
            out += ["", indent + f".. code-block:: {lang or 'text'}", ""]
            out += [indent + "   " + b if b.strip() else "" for b in body]
            out.append("")
            continue
        heading = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if heading:
            level = len(heading.group(1))
            title = heading.group(2)
            i += 1
            if skip_title and level == 1 and not title_skipped:
                title_skipped = True
                continue
            title_rst = inline(title)
            if rubrics:
                out += ["", f".. rubric:: {title_rst}", ""]
            else:
                char = _UNDERLINES[min(level + level_offset, 5)]
                out += ["", title_rst, char * max(len(title_rst), 4), ""]
            continue
        if "|" in line and i + 1 < len(lines) and _is_separator(lines[i + 1]):
            header = _table_cells(line)
            rows = []
            i += 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append(_table_cells(lines[i]))
                i += 1
            out += [""] + _list_table(header, rows)
            continue
        item = re.match(r"^(\s*)([-*+]|\d+[.)])\s+(.*)$", line)
        if item:
            indent, bullet, rest = item.groups()
            bullet = "-" if bullet in "-*+" else "#."
            out.append(f"{indent}{bullet} {inline(rest)}")
            i += 1
            continue
        out.append(inline(line.rstrip()) if line.strip() else "")
        i += 1
    return out


def fenced_blocks(text):
    """``(heading, language, code)`` for every fenced code block of a Markdown text."""
    blocks, heading = [], ""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            heading = m.group(1)
        fence = re.match(r"^\s*(```+|~~~+)\s*([\w+-]*)", line)
        if fence:
            marker, lang = fence.groups()
            body = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(marker):
                body.append(lines[i])
                i += 1
            blocks.append((heading, lang or "text", "\n".join(body)))
        i += 1
    return blocks


# -- directives ---------------------------------------------------------------------------


class _FileDirective(SphinxDirective):
    required_arguments = 1

    def _path(self):
        rel, path = self.env.relfn2path(self.arguments[0])
        self.env.note_dependency(rel)
        return Path(path)

    def _parse(self, rst_lines, source):
        container = nodes.Element()
        content = StringList(rst_lines, source=source)
        nested_parse_with_titles(self.state, content, container)
        return container.children


class MarkdownInclude(_FileDirective):
    option_spec = {
        "skip-title": directives.flag,
        "rubrics": directives.flag,
        "level-offset": directives.nonnegative_int,
    }

    def run(self):
        path = self._path()
        rst = markdown_to_rst(
            path.read_text(encoding="utf-8"),
            skip_title="skip-title" in self.options,
            rubrics="rubrics" in self.options,
            level_offset=self.options.get("level-offset", 0),
        )
        return self._parse(rst, str(path))


class MarkdownCodeBlock(_FileDirective):
    option_spec = {"section": directives.unchanged, "contains": directives.unchanged}

    def run(self):
        path = self._path()
        section, contains = self.options.get("section"), self.options.get("contains")
        for heading, lang, code in fenced_blocks(path.read_text(encoding="utf-8")):
            if section is not None and not heading.startswith(section):
                continue
            if contains is not None and contains not in code:
                continue
            block = nodes.literal_block(code, code, language="bash" if lang == "sh" else lang)
            self.set_source_info(block)
            return [block]
        raise self.error(
            f"{path.name}: no fenced code block under a heading starting with {section!r} "
            f"that contains {contains!r}; update the docs to follow the README."
        )


def _script_summary(script):
    """First paragraph of a benchmark script's docstring, or None."""
    try:
        doc = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8")))
    except (OSError, SyntaxError):
        return None
    return " ".join(doc.split("\n\n")[0].split()) if doc else None


def _fmt(value):
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    return str(value)


def _json_tables(payload):
    """Markdown tables generated from a results JSON that has no Markdown twin."""
    md = []
    results = payload.get("results")
    if isinstance(results, dict) and all(isinstance(v, dict) for v in results.values()):
        keys = [
            k for k in ("median_ms", "min_ms", "max_ms") if all(k in v for v in results.values())
        ]
        if keys:
            md.append("| | " + " | ".join(k.replace("_ms", " (ms)") for k in keys) + " |")
            md.append("|---" * (len(keys) + 1) + "|")
            for name, res in results.items():
                md.append(f"| {name} | " + " | ".join(f"{res[k]:.1f}" for k in keys) + " |")
            md.append("")
    for key in ("ratios", "targets_met"):
        if isinstance(payload.get(key), dict):
            md.append(f"| {key.replace('_', ' ')} | |")
            md.append("|---|---|")
            for name, value in payload[key].items():
                md.append(f"| {name} | {_fmt(value)} |")
            md.append("")
    return "\n".join(md)


_ENV_KEYS = (
    "date", "cpu", "cpu_model", "cpu_count", "threads", "torch_threads", "torch",
    "torch_version", "python", "python_version", "skkernelnet", "dtype", "shape",
    "repeats", "load_average",
)  # fmt: skip


def _environment(payload):
    env = dict(payload.get("environment") or {})
    for key in _ENV_KEYS:  # bench_layer.json keeps these at the top level
        if key in payload and key not in env:
            env[key] = payload[key]
    return [(k, _fmt(env[k])) for k in _ENV_KEYS if k in env]


class BenchmarkResults(_FileDirective):
    def run(self):
        folder = self._path()
        scripts = folder.parent  # benchmarks/results -> benchmarks/<name>.py
        names = sorted(
            {p.stem for p in folder.glob("*.md")} | {p.stem for p in folder.glob("*.json")}
        )
        rst = []
        if not names:
            rst += ["No benchmark results have been written yet.", ""]
        for name in names:
            md_file, json_file = folder / f"{name}.md", folder / f"{name}.json"
            script = scripts / f"{name}.py"
            payload = {}
            if json_file.is_file():
                self.env.note_dependency(str(json_file))
                payload = json.loads(json_file.read_text(encoding="utf-8"))
            if md_file.is_file():
                self.env.note_dependency(str(md_file))
                body = md_file.read_text(encoding="utf-8")
            else:
                body = _json_tables(payload)
            rst += ["", f".. rubric:: ``{name}``", ""]
            summary = _script_summary(script) if script.is_file() else None
            if summary:
                rst += markdown_to_rst(summary) + [""]
            rst += markdown_to_rst(body, rubrics=True) + [""]
            if script.is_file():
                rst += [
                    f"Regenerate with ``python benchmarks/{script.name}`` (writes "
                    f"``benchmarks/results/{name}.*``; ``--help`` lists the options).",
                    "",
                ]
            env = _environment(payload)
            if env:
                rst += ["Measured with:", ""]
                rst += [f"- {k.replace('_', ' ')}: {_escape(v)}" for k, v in env] + [""]
        return self._parse(rst, str(folder))


def setup(app):
    app.add_directive("markdown-include", MarkdownInclude)
    app.add_directive("markdown-code-block", MarkdownCodeBlock)
    app.add_directive("benchmark-results", BenchmarkResults)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
