"""Import customers, products, purchases and contracts from CSV or JSON files.

A company moving in brings its records as files. ``import_file`` streams one
file row by row (a huge CSV is never held in memory), validates each row and
applies it in its own savepoint, so a broken row is reported with its line and
never stops the rest. Rows are matched on their external id (``sku`` for
products): importing the same file twice creates nothing new, and a changed row
updates its record. A blank cell leaves the stored value as it is.

Line numbers: CSV rows carry their physical line (the header is line 1), JSON
list items their 1-based index, JSON lines their line number.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import json
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from tqdm import tqdm  # type: ignore[import-untyped]

from contactcenter.customers.import_rows import (
    KINDS,
    KindSpec,
    Outcome,
    RowProblem,
    normalise_column,
)
from contactcenter.db import Database

MAX_FILE_BYTES = 200 * 1024 * 1024
MAX_FIELD_CHARS = 10_000
MAX_ITEM_CHARS = 1_000_000
MAX_REPORTED_ERRORS = 10_000
BATCH_SIZE = 500
CHUNK_CHARS = 1 << 16
HEADER_LIKE = re.compile(r"^\s*[^\W\d][\w .()/-]*$")
EXTENSIONS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}


class ImportFileError(Exception):
    """A file that cannot be imported at all: unknown kind or type, not CSV/JSON, bad header."""


@dataclass(frozen=True)
class RowError:
    """A row that was not imported: its line in the file and why."""

    line: int
    message: str


@dataclass
class ImportResult:
    """What an import did: counts of created, updated and unchanged rows, and row errors."""

    kind: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0

    def add_error(self, line: int, message: str) -> None:
        """Record a row error (only the first ``MAX_REPORTED_ERRORS`` are kept in full)."""
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(RowError(line, message[:500]))

    def summary(self) -> dict[str, Any]:
        """Return the JSON-ready summary: kind, counts and the number of row errors."""
        return {"kind": self.kind, "created": self.created, "updated": self.updated,
                "unchanged": self.unchanged, "errors": self.error_count}


Record = dict[str, Any]
Item = tuple[int, Record | RowProblem]


class _StopReading(Exception):
    """The rest of a file cannot be read; the rows before it stand."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def import_file(db: Database, kind: str, path: Path, progress: bool = True, *,
                defaults: Mapping[str, str] | None = None) -> ImportResult:
    """Import one file of ``kind`` records and return what happened.

    :param kind: ``customers``, ``products``, ``purchases`` or ``contracts``.
    :param path: a ``.csv`` (UTF-8, with or without BOM, header row detected),
        ``.json`` (a list of objects, or JSON lines) or ``.jsonl`` file.
    :param progress: show a progress bar on stderr.
    :param defaults: values for the kind's columns a row leaves blank (the CLI gives
        customers the deployment's ``country``, in which phone numbers are read); columns
        the kind does not have are ignored.
    :raises ImportFileError: when the file cannot be read at all.
    """
    spec = KINDS.get(kind)
    if spec is None:
        raise ImportFileError(f"unknown kind {kind!r}: use one of {', '.join(KINDS)}")
    fmt = _check_file(path)
    result = ImportResult(kind=kind)
    with path.open(encoding="utf-8-sig", newline="") as fh:
        items = _csv_items(fh, spec) if fmt == "csv" else _json_items(fh, fmt)
        if defaults:
            items = _with_defaults(items, {k: v for k, v in defaults.items()
                                           if k in spec.columns})
        total = _count_lines(path) if fmt in ("csv", "jsonl") else None
        bar = tqdm(total=total, unit="row", desc=f"import {kind}", file=sys.stderr,
                   disable=not progress, leave=False)
        with db.session() as session, bar:
            try:
                _apply_all(session, spec, items, result, bar)
            except _StopReading as stop:
                result.add_error(stop.line, str(stop))
            session.commit()
    if result.created or result.updated:
        # Purchases, contracts and customers change customer value and tiers (issue 7).
        from contactcenter.customers.value import recompute_after_import

        recompute_after_import(db, kind)
    return result


def _with_defaults(items: Iterator[Item], defaults: dict[str, str]) -> Iterator[Item]:
    """Fill each record's blank columns from ``defaults``."""
    for line, record in items:
        if isinstance(record, dict):
            blank = {k: v for k, v in defaults.items() if not str(record.get(k) or "").strip()}
            if blank:
                record = {**record, **blank}
        yield line, record


def _apply_all(session: Session, spec: KindSpec, items: Iterator[Item], result: ImportResult,
               bar: Any) -> None:
    pending = 0
    for line, record in items:
        bar.update(1)
        if isinstance(record, RowProblem):
            result.add_error(line, str(record))
            continue
        try:
            # One flush per row: autoflush before every look-up would cost a flush each.
            with session.begin_nested(), session.no_autoflush:
                outcome = spec.apply(session, record)
                session.flush()
        except (RowProblem, ValueError, ArithmeticError) as exc:
            result.add_error(line, str(exc) or type(exc).__name__)
            continue
        except IntegrityError as exc:
            result.add_error(line, f"conflicts with a stored record: {exc.orig}")
            continue
        _count(result, outcome)
        pending += 1
        if pending >= BATCH_SIZE:
            session.commit()
            session.expunge_all()
            pending = 0


def _count(result: ImportResult, outcome: Outcome) -> None:
    if outcome == "created":
        result.created += 1
    elif outcome == "updated":
        result.updated += 1
    else:
        result.unchanged += 1


def _check_file(path: Path) -> str:
    """Return the file's format or raise ``ImportFileError`` when it cannot be read."""
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise ImportFileError(f"{path.name}: unknown file type {path.suffix or '(none)'!r}: "
                              "use .csv, .json or .jsonl")
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(CHUNK_CHARS)
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if size > MAX_FILE_BYTES:
        raise ImportFileError(f"{path.name}: {size} bytes is over the "
                              f"{MAX_FILE_BYTES // (1024 * 1024)} MB limit")
    if b"\x00" in head:
        raise ImportFileError(f"{path.name}: not a text file")
    try:
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=False)
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"{path.name}: not UTF-8 text ({exc.reason})") from exc
    if not text.strip():
        raise ImportFileError(f"{path.name}: the file is empty")
    if fmt == "json":
        start = text.lstrip()[:1]
        if start == "[":
            return "json"
        first_line = text.lstrip().split("\n", 1)[0].strip()
        if start != "{" or first_line == "{":
            raise ImportFileError(f"{path.name}: not JSON: expected a list of objects or "
                                  "one object per line")
        return "jsonl"
    return fmt


def _count_lines(path: Path) -> int:
    """Count newlines with a streamed binary pass (the progress bar's total)."""
    count = 0
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            count += chunk.count(b"\n")
    return count


def _text_lines(fh: TextIO) -> Iterator[str]:
    """Yield a file's lines, turning a decoding error into ``_StopReading``."""
    number = 0
    while True:
        try:
            line = fh.readline()
        except UnicodeDecodeError as exc:
            raise _StopReading(number + 1, "the rest of the file is not UTF-8 text "
                               f"({exc.reason}); stopped reading") from exc
        if not line:
            return
        number += 1
        yield line


def _delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _csv_items(fh: TextIO, spec: KindSpec) -> Iterator[Item]:
    """Yield (line, record) for every CSV row; the header row is detected."""
    csv.field_size_limit(max(csv.field_size_limit(), MAX_ITEM_CHARS))
    lines = _text_lines(fh)
    first = next(lines, "")
    reader = csv.reader(itertools.chain([first], lines), delimiter=_delimiter(first))
    try:
        head = next(reader)
    except (StopIteration, csv.Error) as exc:
        raise ImportFileError(f"not CSV: {exc}") from exc
    names = [normalise_column(cell) for cell in head]
    if any(name in spec.columns for name in names):
        columns = names
        missing = [c for c in spec.required if c not in columns]
        if missing:
            raise ImportFileError(f"the header lacks required column(s) {', '.join(missing)} "
                                  f"for {spec.kind}; expected columns: {', '.join(spec.columns)}")
        dupes = sorted({c for c in columns if c and columns.count(c) > 1})
        if dupes:
            raise ImportFileError(f"the header repeats column(s) {', '.join(dupes)}")
        pending: list[tuple[int, list[str]]] = []
    elif all(HEADER_LIKE.match(cell) for cell in head):
        raise ImportFileError(f"the header names no known column for {spec.kind}; "
                              f"expected columns: {', '.join(spec.columns)}")
    else:
        # No known column name and no header-like row: it is data in the documented order.
        columns = list(spec.columns)
        pending = [(1, head)]
    previous = reader.line_num
    while True:
        if pending:
            line, row = pending.pop()
        else:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield previous + 1, RowProblem(f"unreadable CSV row: {exc}")
                previous = reader.line_num
                continue
            line, previous = previous + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(columns):
            yield line, RowProblem(f"has {len(row)} fields but there are {len(columns)} columns")
            continue
        yield line, _record(dict(zip(columns, row, strict=False)))


def _record(raw: dict[str, Any]) -> Record | RowProblem:
    """Turn a CSV row or JSON object into text values keyed by known column names."""
    record: Record = {}
    for key, value in raw.items():
        name = normalise_column(str(key))
        if not name:
            continue
        if value is None:
            text = ""
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int | Decimal | float | str):
            text = str(value)
        elif isinstance(value, list) and all(isinstance(v, str | int) for v in value):
            text = ";".join(str(v) for v in value)
        else:
            return RowProblem(f"field {name} must be text, a number or a list of text")
        if len(text) > MAX_FIELD_CHARS:
            return RowProblem(f"field {name} is longer than {MAX_FIELD_CHARS} characters")
        record[name] = text.strip()
    return record


def _json_items(fh: TextIO, fmt: str) -> Iterator[Item]:
    """Yield (line, record) from a JSON list (item index) or JSON lines (line number)."""
    if fmt == "jsonl":
        for number, line in enumerate(_text_lines(fh), start=1):
            if not line.strip():
                continue
            if len(line) > MAX_ITEM_CHARS:
                yield number, RowProblem(f"line is longer than {MAX_ITEM_CHARS} characters")
                continue
            try:
                value = json.loads(line, parse_float=Decimal)
            except json.JSONDecodeError as exc:
                yield number, RowProblem(f"invalid JSON: {exc.msg} at column {exc.colno}")
                continue
            yield number, _object(value)
        return
    for index, value in _json_array(fh):
        yield index, _object(value)


def _object(value: Any) -> Record | RowProblem:
    if not isinstance(value, dict):
        return RowProblem(f"expected an object, got {type(value).__name__}")
    return _record(value)


def _json_array(fh: TextIO) -> Iterator[tuple[int, Any]]:
    """Stream the items of a top-level JSON list without loading the whole file."""
    decoder = json.JSONDecoder(parse_float=Decimal)
    reader = _Buffer(fh)
    reader.skip_space()
    if reader.peek() != "[":
        raise ImportFileError("not JSON: expected a list of objects")
    reader.pos += 1
    index = 0
    while True:
        reader.skip_space()
        char = reader.peek()
        if char == "]":
            return
        if index:
            if char != ",":
                raise _StopReading(index + 1, "invalid JSON after this item: expected ',' or "
                                   "']'; stopped reading")
            reader.pos += 1
            reader.skip_space()
        index += 1
        reader.index = index
        yield index, reader.decode(decoder, index)


class _Buffer:
    """A growing window over a text file for incremental JSON decoding."""

    def __init__(self, fh: TextIO) -> None:
        self.fh = fh
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.index = 1

    def _more(self) -> bool:
        if self.eof:
            return False
        try:
            chunk = self.fh.read(CHUNK_CHARS)
        except UnicodeDecodeError as exc:
            raise _StopReading(self.index, f"the rest of the file is not UTF-8 text "
                               f"({exc.reason}); stopped reading") from exc
        if not chunk:
            self.eof = True
            return False
        self.buf = self.buf[self.pos:] + chunk
        self.pos = 0
        return True

    def skip_space(self) -> None:
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf) or not self._more():
                return

    def peek(self) -> str:
        return self.buf[self.pos:self.pos + 1]

    def decode(self, decoder: json.JSONDecoder, index: int) -> Any:
        while True:
            try:
                value, end = decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if self._grow(index):
                    continue
                raise _StopReading(index, f"invalid JSON: {exc.msg}; stopped reading") from exc
            # A value that ends exactly at the buffer's end may be a cut number.
            if end == len(self.buf) and self._grow(index):
                continue
            self.pos = end
            return value

    def _grow(self, index: int) -> bool:
        if len(self.buf) - self.pos > MAX_ITEM_CHARS:
            raise _StopReading(index, f"item is longer than {MAX_ITEM_CHARS} characters; "
                               "stopped reading")
        return self._more()

