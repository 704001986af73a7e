"""One CSV file of a results folder, read without trusting it.

A file is read from one snapshot of its bytes, line by line (every field is
one line of printable text: :func:`bench.schema.clean_text`), so that a line
a sweep is appending while the report reads is simply not there yet (a last
line without its newline), and one damaged line costs that line, not the
file. A line that does not parse (not UTF-8, a control character, a field
too many or too few, a number that is not one, an unknown status) is
returned as *bad*, with its line number and why, for the caller to warn
about or quarantine; it is never counted as a row.

The header decides how rows are read: today's columns; an older schema's
(a subset of today's, in today's order), whose missing columns are filled
from :data:`bench.schema.LEGACY_DEFAULTS`; anything else is refused, because
guessing which value belongs to which column would corrupt the results.
"""
import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from bench.schema import LEGACY_DEFAULTS, STATUSES, columns_of, numeric_columns


class HeaderError(Exception):
    """A file whose header is not one this version can read."""


@dataclass
class Snapshot:
    path: Path
    columns: list  # today's columns
    header: list | None = None  # as found; None for an absent or empty file
    rows: list = field(default_factory=list)  # dicts of today's columns, values as text
    bad: list = field(default_factory=list)  # (line number, raw bytes, reason)
    torn: bytes = b""  # a last line without its newline
    n_lines: int = 0  # complete lines, the header included

    @property
    def added(self) -> list:
        """Today's columns that the file's (older) header lacks."""
        return [c for c in self.columns if self.header is not None and c not in self.header]

    def to_csv(self) -> bytes:
        """The good rows under today's header (a migrated, repaired file)."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.columns)
        writer.writeheader()
        writer.writerows(self.rows)
        return buf.getvalue().encode()


def _is_subsequence(part: list, whole: list) -> bool:
    it = iter(whole)
    return all(name in it for name in part)


def check_header(name: str, header: list, columns: list):
    if header == columns:
        return
    unknown = [c for c in header if c not in columns]
    fix = (f"move {name} aside to start afresh (e.g. mv {name} {name}.old), or restore its header line to "
           f"this version's columns: {','.join(columns)}")
    if unknown:
        raise HeaderError(f"{name}: unknown column {unknown[0]!r} in its header; {fix}")
    if len(set(header)) != len(header):
        raise HeaderError(f"{name}: a column appears twice in its header; {fix}")
    if "run_id" not in header or not _is_subsequence(header, columns):
        raise HeaderError(f"{name}: its header's columns are not in this version's order; {fix}")


def _parse_line(raw: bytes, header: list, numeric: set) -> tuple:
    """(values, None) or (None, why the line is bad)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 (byte {exc.start})"
    if not text.isprintable():
        return None, "a control character"
    try:
        (values,) = csv.reader([text], strict=True)
    except (csv.Error, ValueError):
        return None, "not one CSV row"
    if len(values) != len(header):
        return None, f"{len(values)} fields where the header has {len(header)}"
    row = dict(zip(header, values))
    for col in numeric & row.keys():
        if row[col]:
            try:
                float(row[col])
            except ValueError:
                return None, f"{col} is {row[col][:20]!r}, not a number"
    if "status" in row and row["status"] not in STATUSES:
        return None, f"unknown status {row['status'][:20]!r}"
    if not row.get("run_id"):
        return None, "no run_id"
    return row, None


def read(path, row_type) -> Snapshot:
    """The file as it is now; raises :class:`HeaderError` (or ``OSError``)."""
    path = Path(path)
    snap = Snapshot(path, columns_of(row_type))
    if path.is_dir():
        raise HeaderError(f"{path.name} is a folder; move it away")
    data = path.read_bytes() if path.exists() else b""
    body, _, snap.torn = data.rpartition(b"\n")
    lines = [ln.removesuffix(b"\r") for ln in body.split(b"\n")] if body else []
    snap.n_lines = len(lines)
    if not lines:
        return snap  # absent, empty, or a header cut off while it was written
    try:
        snap.header = next(csv.reader([lines[0].decode("utf-8")]))
    except (UnicodeDecodeError, csv.Error, StopIteration):
        raise HeaderError(f"{path.name}: its first line is not a CSV header; move it aside "
                          f"(e.g. mv {path.name} {path.name}.old) to start afresh") from None
    check_header(path.name, snap.header, snap.columns)
    numeric = set(numeric_columns(row_type))
    fill = {c: str(LEGACY_DEFAULTS.get(c, "")) for c in snap.added}
    for number, raw in enumerate(lines[1:], start=2):
        if not raw:
            continue
        row, why = _parse_line(raw, snap.header, numeric)
        if why:
            snap.bad.append((number, raw, why))
        else:
            snap.rows.append({c: row[c] if c in row else fill[c] for c in snap.columns})
    return snap
