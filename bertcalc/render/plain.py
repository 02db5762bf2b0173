"""The tables' document model, and a plain-text renderer for it that needs no rich.

The views (``text.py``, ``grid.py``) build their output from :class:`Text`, :class:`Table`, :class:`Group` and
:class:`FirstThatFits`, whose methods are the few of rich's that they use. The document is then either

- drawn as plain text here (:func:`draw`): no colour, every table at its natural width, in rich's
  ``box.SIMPLE_HEAD`` layout, character for character what rich draws of it when nothing has to wrap; that is
  what output to a pipe or a file gets, and it costs neither rich's import nor its layout engine; or
- replayed into rich's own objects (:func:`to_rich`) for a terminal, an SVG or HTML image, and for any plain
  output that does not fit its width (a line longer than the width, which rich wraps): :class:`DoesNotFit`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar

SIMPLE_HEAD = "SIMPLE_HEAD"  # the one box style the views use (rich.box.SIMPLE_HEAD)


class DoesNotFit(Exception):
    """The plain renderer would have to wrap or shrink something: rich's layout engine must draw it."""


def cell_len(s: str) -> int:
    """Terminal columns of ``s``: 2 for wide East Asian characters, 0 for combining marks, else 1."""
    if s.isascii():
        return len(s)
    n = 0
    for ch in s:
        if unicodedata.combining(ch):
            continue
        n += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return n


class Text:
    """rich's ``Text``, as the operations that built it: replayed into a rich Text, or read as plain."""

    def __init__(self, text: str = "", style: Any = "", overflow: str | None = None) -> None:
        self._base = (text, style, overflow)
        self._ops: list[tuple[str, Any, Any]] = []
        self.plain = text

    def append(self, text: Any, style: Any = None) -> Text:
        if isinstance(text, Text):
            return self.append_text(text)
        self._ops.append(("append", text, style))
        self.plain += text
        return self

    def append_text(self, text: Text) -> Text:
        self._ops.append(("append_text", text, None))
        self.plain += text.plain
        return self

    def copy(self) -> Text:
        new = Text(*self._base)
        new._ops = list(self._ops)
        new.plain = self.plain
        return new

    @classmethod
    def assemble(cls, *parts: Any) -> Text:
        text = cls()
        for part in parts:
            if isinstance(part, (Text, str)):
                text.append(part)
            else:
                text.append(*part)
        return text

    def __str__(self) -> str:
        return self.plain

    def __eq__(self, other: object) -> bool:  # rich's Text compares by its plain text
        if isinstance(other, Text):
            return self.plain == other.plain
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


class Column:
    def __init__(self, header: Any, kw: dict[str, Any]) -> None:
        self.header = header
        self.kw = kw
        self.justify = kw.get("justify", "left")


class Table:
    """rich's ``Table``, recorded: its settings, columns, rows and sections."""

    def __init__(self, *headers: Any, **kw: Any) -> None:
        self.kw = kw
        self.columns: list[Column] = []
        self.rows: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self.free_width = False
        for h in headers:
            self.add_column(h)

    def add_column(self, header: Any = "", **kw: Any) -> None:
        self.columns.append(Column(header, kw))

    def add_row(self, *cells: Any, **kw: Any) -> None:
        self.rows.append((cells, dict(kw)))

    def add_rows(self, rows: Rows) -> None:
        self.rows.append((rows, {}))

    def add_section(self) -> None:
        if self.rows:
            self.rows[-1][1]["end_section"] = True

    def row_cells(self) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
        """Every row as (cells, settings), streamed rows made (styled) and expanded."""
        for cells, kw in self.rows:
            if isinstance(cells, Rows):
                made = list(cells.styled())
                for j, row in enumerate(made):
                    yield row, (kw if j == len(made) - 1 else {})
            else:
                yield cells, kw


class Rows:
    """Rows made while they are drawn, never held: ``plain()`` yields each row's cells as one-line strings,
    ``styled()`` the same rows as the view's Text cells (for rich and the terminal), ``widths`` is each
    column's widest cell, known beforehand (a model of 10^5 layers has 1.6 million rows)."""

    def __init__(self, plain: Callable[[], Iterator[tuple[str, ...]]], styled: Callable[[], Iterator[tuple]],
                 widths: list[int], n: int) -> None:
        self.plain, self.styled, self.widths, self.n = plain, styled, widths, n


class Group:
    def __init__(self, *renderables: Any) -> None:
        self.renderables = list(renderables)


class FirstThatFits:
    """Of several layouts of the same content, the first whose natural width fits the width (else the last):
    tables give way to narrower layouts instead of cutting names or numbers."""

    def __init__(self, *layouts: Callable[[], Any]) -> None:
        self.layouts = layouts  # callables returning a renderable or a list of them

    def choose(self, fits: Callable[[Any], bool]) -> list[Any]:
        for i, make in enumerate(self.layouts):
            parts = make()
            parts = parts if isinstance(parts, list) else [parts]
            if i == len(self.layouts) - 1 or all(fits(p) for p in parts if not getattr(p, "free_width", False)):
                return parts
        raise AssertionError("unreachable")  # pragma: no cover


# ---------------------------------------------------------------------------------------------- plain text


# rich reads a plain string (not a Text) as console markup: "[bold]" is a style, "\\[" an escaped bracket
_MARKUP = re.compile(r"\[[a-z#/@]|\\")


def _lines(cell: Any) -> list[str]:
    if isinstance(cell, Text):
        return cell.plain.split("\n")
    text = "" if cell is None else str(cell)
    if _MARKUP.search(text):
        raise DoesNotFit("console markup in a string: rich reads it")
    return text.split("\n")


def _cell_width(cell: Any) -> int:
    return max(cell_len(line) for line in _lines(cell))


def table_widths(t: Table) -> list[int]:
    """Each column's natural width: its widest line, header included (padding not included)."""
    widths = [_cell_width(c.header) if t.kw.get("show_header", True) else 0 for c in t.columns]
    for cells, _ in t.rows:
        if isinstance(cells, Rows):
            widths = [max(a, b) for a, b in zip(widths, [*cells.widths, *[0] * len(widths)], strict=False)]
            continue
        for i, cell in enumerate(cells[: len(widths)]):
            w = _cell_width(cell)
            if w > widths[i]:
                widths[i] = w
    return widths


def _padded(widths: list[int]) -> list[int]:
    """pad_edge=False with padding (0, 1): no pad left of the first column nor right of the last."""
    n = len(widths)
    return [w + (i > 0) + (i < n - 1) for i, w in enumerate(widths)]


def table_width(t: Table, widths: list[int] | None = None) -> int:
    """What rich measures as the table's natural (maximum) width: the cells, their padding and the edges."""
    widths = table_widths(t) if widths is None else widths
    if not widths:
        return 0
    return sum(_padded(widths)) + len(widths) + 1  # the edges and the dividers


def _check(t: Table) -> None:
    kw = t.kw
    if kw.get("box") != SIMPLE_HEAD or kw.get("pad_edge", True) or kw.get("show_footer") or kw.get("expand") \
            or kw.get("show_lines") or kw.get("caption") or kw.get("show_header", True) is not True \
            or (kw.get("title_justify", "center") != "left" and kw.get("title")):
        raise DoesNotFit("a table style the plain renderer does not draw")
    for c in t.columns:
        if set(c.kw) - {"justify", "no_wrap", "overflow", "style"}:
            raise DoesNotFit("a column setting the plain renderer does not draw")


def _align(text: str, width: int, justify: str, shown: str | None = None) -> str:
    """``text`` padded to ``width`` columns; ``shown`` (the text with its styles painted in) in its place."""
    gap = width - cell_len(text)
    if shown is not None:
        text = shown
    if justify == "right":
        return " " * gap + text
    if justify == "center":
        left = gap // 2
        return " " * left + text + " " * (gap - left)
    return text + " " * gap


def draw_table(t: Table, max_width: int, ansi: Ansi | None = None, skip_streams: bool = False) -> Iterator[str]:
    """The table's lines, as rich draws a ``box.SIMPLE_HEAD``, ``pad_edge=False`` table that fits; with
    ``ansi``, in its styles."""
    _check(t)
    widths = table_widths(t)
    width = table_width(t, widths)
    if width > max_width:
        raise DoesNotFit("the table is wider than the width")
    title = t.kw.get("title")
    if title:
        for line in _lines(title):
            if cell_len(line) > width:
                raise DoesNotFit("the title is wider than the table")
        yield from _lines(title) if ansi is None else ansi.lines(title, t.kw.get("title_style", "italic"))
    justify = [c.justify for c in t.columns]
    yield ""  # the top edge: blank in SIMPLE_HEAD
    head = [_join(t.kw.get("header_style", ""), c.kw.get("header_style", "")) for c in t.columns]
    yield from _row([c.header for c in t.columns], widths, justify, bottom=True, ansi=ansi, styles=head)
    rule = " " + "─" * (width - 2)
    yield rule if ansi is None else ansi.paint(rule, t.kw.get("border_style", ""))
    last = len(t.rows) - 1
    col_styles = [c.kw.get("style", "") or "" for c in t.columns]
    for i, (cells, kw) in enumerate(t.rows):
        if isinstance(cells, Rows):
            if not skip_streams:
                if ansi is None:
                    yield from _plain_rows(cells, widths, justify)
                else:
                    for row in cells.styled():
                        yield from _row(row, widths, justify, ansi=ansi, styles=col_styles)
        else:
            styles = col_styles if ansi is None or not kw.get("style") else \
                [_join(c, kw["style"]) for c in col_styles]
            yield from _row(cells, widths, justify, ansi=ansi, styles=styles)
        if kw.get("end_section") and i != last:
            yield ""
    yield ""  # the bottom edge


def _plain_rows(rows: Rows, widths: list[int], justify: list[str]) -> Iterator[str]:
    """Streamed rows, one format per row: the cells are one-line strings (ASCII: one column a character;
    any other row goes the general way)."""
    n = len(widths)
    spec = []
    for i, w in enumerate(widths):
        pad = ("" if i == 0 else " ") + "{:" + (">" if justify[i] == "right" else "<") + str(w) + "}"
        spec.append(pad + (" " if i < n - 1 else ""))
    fmt = (" " + " ".join(spec)).format
    for cells in rows.plain():
        joined = "".join(cells)
        if len(cells) == n and joined.isascii() and "\n" not in joined:
            yield fmt(*cells)
        else:
            yield from _row(cells, widths, justify)


def _row(cells: Iterable[Any], widths: list[int], justify: list[str], bottom: bool = False,
         ansi: Ansi | None = None, styles: list[str] | None = None) -> Iterator[str]:
    """One row's lines; cells align to the top, the header's to the bottom (as rich aligns them)."""
    cells = list(cells)
    cols = [_lines(c) for c in cells]
    cols += [[""]] * (len(widths) - len(cols))
    painted = None
    if ansi is not None:
        painted = [ansi.lines(c, styles[i] if styles else "") for i, c in enumerate(cells)]
        painted += [[""]] * (len(widths) - len(painted))
    height = max(len(c) for c in cols)
    if bottom:
        cols = [[""] * (height - len(c)) + c for c in cols]
        if painted is not None:
            painted = [[""] * (height - len(c)) + c for c in painted]
    n = len(widths)
    for k in range(height):
        parts = []
        for i, (lines, w) in enumerate(zip(cols, widths, strict=False)):
            text = lines[k] if k < len(lines) else ""
            if painted is None:
                cell = _align(text, w, justify[i])
            else:
                shown = painted[i][k] if k < len(painted[i]) else ""
                cell = _align(text, w, justify[i], shown)
            parts.append((" " if i > 0 else "") + cell + (" " if i < n - 1 else ""))
        yield " " + " ".join(parts)


def _join(a: str | None, b: str | None) -> str:
    """Two rich style strings, the second over the first."""
    return f"{a} {b}" if a and b else a or b or ""


class Ansi:
    """Styles as ANSI SGR codes, for a terminal: rich's words for them (``bold cyan``, ``dim``), colour
    dropped under NO_COLOR as rich drops it."""

    ATTRS: ClassVar[dict[str, str]] = {"bold": "1", "dim": "2", "italic": "3", "underline": "4"}
    COLORS: ClassVar[dict[str, str]] = {
        "black": "30", "red": "31", "green": "32", "yellow": "33", "blue": "34", "magenta": "35", "cyan": "36",
        "white": "37", "dark_orange": "38;5;208"}

    def __init__(self, color: bool = True, colors256: bool = True) -> None:
        self.color = color
        self.colors256 = colors256
        self._codes: dict[str, str] = {}

    def code(self, style: str) -> str:
        got = self._codes.get(style)
        if got is None:
            attrs: list[str] = []
            color = ""
            for word in style.split():
                if word in self.ATTRS:
                    if self.ATTRS[word] not in attrs:
                        attrs.append(self.ATTRS[word])
                elif word in self.COLORS:
                    color = self.COLORS[word]
                    if color.startswith("38;5") and not self.colors256:
                        color = "33"
                elif word != "none":
                    raise DoesNotFit(f"a style the plain renderer does not know: {word!r}")
            codes = [c for c in ("1", "2", "3", "4") if c in attrs] + ([color] if color and self.color else [])
            got = self._codes[style] = f"\x1b[{';'.join(codes)}m" if codes else ""
        return got

    def paint(self, text: str, style: str | None) -> str:
        code = self.code(style) if style and text else ""
        return f"{code}{text}\x1b[0m" if code else text

    def lines(self, cell: Any, outer: str | None = "") -> list[str]:
        """A cell's lines with its styles painted in."""
        runs = _runs(cell, outer or "") if isinstance(cell, Text) else [("" if cell is None else str(cell), outer)]
        out = [""]
        for text, style in runs:
            for j, piece in enumerate(text.split("\n")):
                if j:
                    out.append("")
                out[-1] += self.paint(piece, style)
        return out


def _runs(t: Text, outer: str) -> list[tuple[str, str]]:
    """A Text as (text, style) runs, each style the whole stack over it (its Text's base style first)."""
    text, style, _ = t._base
    base = _join(outer, style or "")
    runs = [(text, base)] if text else []
    for op, value, st in t._ops:
        if op == "append":
            runs.append((value, _join(base, st)))
        else:
            runs.extend(_runs(value, base))
    return runs


def _fits(renderable: Any, max_width: int) -> bool:
    return measure(renderable) <= max_width


def measure(renderable: Any) -> int:
    """The natural width of a renderable, as rich's ``Measurement.get(...).maximum``."""
    if isinstance(renderable, Table):
        return table_width(renderable)
    if isinstance(renderable, Group):
        return max((measure(r) for r in renderable.renderables), default=0)
    if isinstance(renderable, (list, tuple)):
        return max((measure(r) for r in renderable), default=0)
    if isinstance(renderable, FirstThatFits):
        raise DoesNotFit("a nested choice of layouts")
    return _cell_width(renderable)


def draw_lines(renderable: Any, max_width: int, ansi: Ansi | None = None, skip_streams: bool = False
               ) -> Iterator[str]:
    """The lines of a document drawn as plain text at ``max_width``; :class:`DoesNotFit` where rich would
    have to wrap a line or shrink a table."""
    if isinstance(renderable, Group):
        for r in renderable.renderables:
            yield from draw_lines(r, max_width, ansi, skip_streams)
    elif isinstance(renderable, FirstThatFits):
        for part in renderable.choose(lambda p: _fits(p, max_width)):
            yield from draw_lines(part, max_width, ansi, skip_streams)
    elif isinstance(renderable, Table):
        yield from draw_table(renderable, max_width, ansi, skip_streams)
    elif isinstance(renderable, (Text, str)):
        lines = _lines(renderable)
        painted = None if ansi is None else ansi.lines(renderable)
        for k, line in enumerate(lines):
            if cell_len(line) > max_width:
                if painted is not None:
                    raise DoesNotFit("a styled line longer than the width: rich wraps it")
                yield from _wrap(line, max_width)
            else:
                yield line if painted is None else painted[k]
    else:
        raise DoesNotFit(f"no plain drawing for {type(renderable).__name__}")


_WORD = re.compile(r"\s*\S+\s*")


def _wrap(line: str, width: int) -> Iterator[str]:
    """A line of text wrapped at word boundaries, as rich wraps a Text (``rich._wrap.divide_line``)."""
    breaks: list[int] = []
    offset = 0
    for m in _WORD.finditer(line):
        start, word = m.start(), m.group(0)
        length = cell_len(word.rstrip())
        if width - offset >= length:
            offset += cell_len(word)
        elif length > width:
            raise DoesNotFit("a word longer than the width: rich folds it")
        elif offset and start:
            breaks.append(start)
            offset = cell_len(word)
    for a, b in zip([0, *breaks], [*breaks, len(line)], strict=True):
        yield line[a:b].rstrip()


def draw(renderable: Any, max_width: int, ansi: Ansi | None = None) -> str:
    """The whole document as text, each line without trailing spaces (as ``to_text`` writes rich's output);
    with ``ansi``, in colour for a terminal."""
    return "".join(line.rstrip() + "\n" for line in draw_lines(renderable, max_width, ansi))


BLOCK = 1 << 16  # characters per piece written


def draw_chunks(renderable: Any, max_width: int, ansi: Ansi | None = None) -> Iterator[str]:
    """:func:`draw`'s text in pieces of about :data:`BLOCK` characters, made while they are written. Everything
    that could not be drawn plain is found first (a dry run without the streamed rows), so :class:`DoesNotFit`
    is raised before the first piece, never halfway through the output."""
    for _ in draw_lines(renderable, max_width, ansi, skip_streams=True):
        pass
    yield from blocks(line.rstrip() + "\n" for line in draw_lines(renderable, max_width, ansi))


def blocks(pieces: Iterable[str]) -> Iterator[str]:
    """``pieces`` joined into pieces of about :data:`BLOCK` characters: few writes, and none held whole."""
    out: list[str] = []
    n = 0
    for p in pieces:
        out.append(p)
        n += len(p)
        if n >= BLOCK:
            yield "".join(out)
            out, n = [], 0
    if out:
        yield "".join(out)


# --------------------------------------------------------------------------------------------------- rich


def to_rich(obj: Any) -> Any:
    """The same document as rich's objects, for the terminal, SVG and HTML."""
    if isinstance(obj, Text):
        from rich.text import Text as RichText

        text, style, overflow = obj._base
        out = RichText(text, style=style, overflow=overflow)
        for op, value, style in obj._ops:
            if op == "append":
                out.append(value, style=style)
            else:
                out.append_text(to_rich(value))
        return out
    if isinstance(obj, Table):
        from rich import box
        from rich.table import Table as RichTable

        kw = dict(obj.kw)
        if kw.get("box") == SIMPLE_HEAD:
            kw["box"] = box.SIMPLE_HEAD
        if isinstance(kw.get("title"), Text):
            kw["title"] = to_rich(kw["title"])
        t = RichTable(**kw)
        for c in obj.columns:
            t.add_column(to_rich(c.header), **c.kw)
        for cells, row_kw in obj.row_cells():
            t.add_row(*(to_rich(c) for c in cells), **row_kw)
        return t
    if isinstance(obj, Group):
        from rich.console import Group as RichGroup

        return RichGroup(*(to_rich(r) for r in obj.renderables))
    if isinstance(obj, FirstThatFits):
        return _RichFirstThatFits(obj)
    return obj


class _RichFirstThatFits:
    """:class:`FirstThatFits` under rich: measured by rich, at the console's width."""

    def __init__(self, choice: FirstThatFits) -> None:
        self.choice = choice

    def __rich_console__(self, console: Any, options: Any) -> Iterator[Any]:
        from rich.measure import Measurement

        def fits(part: Any) -> bool:
            return Measurement.get(console, options.update(max_width=10**6), to_rich(part)).maximum \
                <= options.max_width

        yield from (to_rich(p) for p in self.choice.choose(fits))
