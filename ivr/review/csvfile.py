"""The blocklist CSV format, for `ivr blocklist import` and `export`.

Columns: number, prefix, category, note, evidence, expires, action. Only number, category and
note are required. `prefix` is yes/no; `evidence` holds ids separated by spaces or `;`;
`expires` is `90d` or `YYYY-MM-DD` (default from the configuration); `action` is `reject` or
`route:NAME`. Export adds the entry's id, status and review fields after these; import
accepts and ignores them, so an export reads back as proposals.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ivr.core.blocklist import EntryStatus
from ivr.review.service import Proposal

IMPORT_COLUMNS = ("number", "prefix", "category", "note", "evidence", "expires", "action")
REQUIRED = frozenset({"number", "category", "note"})
EXPORT_COLUMNS = (
    *IMPORT_COLUMNS,
    "id",
    "status",
    "expires_at",
    "proposed_by",
    "proposed_at",
    "decided_by",
    "decided_at",
    "revoked_by",
    "revoked_at",
)
_YES = {"yes", "y", "true", "1"}
_NO = {"", "no", "n", "false", "0"}
MAX_ROWS = 10_000


class CsvError(ValueError):
    """The file as a whole cannot be read (encoding, header)."""


def parse_import(text: str) -> list[tuple[int, Proposal | str]]:
    """Each data row as (line number, proposal) or (line number, what is wrong with it)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise CsvError("the file is empty") from None
    except csv.Error as exc:
        raise CsvError(f"line 1: {exc}") from None
    unknown = [h for h in header if h not in EXPORT_COLUMNS]
    if unknown:
        raise CsvError(
            f"line 1: unknown column(s) {', '.join(unknown)}; use {', '.join(IMPORT_COLUMNS)}"
        )
    missing = REQUIRED - set(header)
    if missing:
        raise CsvError(f"line 1: missing column(s) {', '.join(sorted(missing))}")
    if len(set(header)) != len(header):
        raise CsvError("line 1: a column is named twice")
    rows: list[tuple[int, Proposal | str]] = []
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            rows.append((reader.line_num, f"unreadable: {exc}"))
            break
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(rows) >= MAX_ROWS:
            raise CsvError(f"more than {MAX_ROWS} rows; split the file")
        if len(cells) != len(header):
            rows.append((line, f"has {len(cells)} fields, the header has {len(header)}"))
            continue
        # Export's extra columns (id, status, ...) are for people and are not read back.
        row = dict(zip(header, (_uncell(c.strip()) for c in cells), strict=True))
        rows.append((line, _proposal(row)))
    return rows


def _proposal(row: dict[str, str]) -> Proposal | str:
    prefix = row.get("prefix", "").lower()
    if prefix not in _YES | _NO:
        return f"prefix {row['prefix']!r}: use yes or no"
    return Proposal(
        number=row["number"],
        category=row["category"],
        note=row["note"],
        prefix=prefix in _YES,
        evidence=tuple(e for e in re.split(r"[\s;]+", row.get("evidence", "")) if e),
        expires=row.get("expires") or None,
        action=row.get("action") or "reject",
    )


# What a spreadsheet reads as the start of a formula (OWASP's list): such a cell is exported
# with a leading apostrophe, which spreadsheets show as text and `parse_import` removes.
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    text = str(value)
    # Apostrophes already before a formula character get one more, so the round trip holds.
    return "'" + text if text.lstrip("'").startswith(_FORMULA) else text


def _uncell(text: str) -> str:
    return text[1:] if text.startswith("'") and text.lstrip("'").startswith(_FORMULA) else text


class _Neutral:
    """A csv writer whose every cell is safe to open in a spreadsheet."""

    def __init__(self, buf: io.StringIO) -> None:
        self._w = csv.writer(buf, lineterminator="\n")

    def writerow(self, row: Iterable[object]) -> None:
        self._w.writerow([_cell(v) for v in row])


def export(rows: Iterable[tuple[dict[str, Any], EntryStatus]], tz: ZoneInfo) -> str:
    """CSV text that `parse_import` reads back (the extra columns are for people)."""
    buf = io.StringIO()
    w = _Neutral(buf)
    w.writerow(EXPORT_COLUMNS)
    for rec, status in rows:
        exp = rec["expires_at"]
        last_day = (
            (exp - timedelta(microseconds=1)).astimezone(tz).date().isoformat() if exp else ""
        )
        w.writerow(
            [
                rec["pattern"],
                "yes" if rec["is_prefix"] else "no",
                rec["category"],
                rec["note"],
                " ".join(json.loads(rec["evidence"])),
                last_day,
                rec["action"],
                rec["id"],
                status.value,
                _iso(exp),
                rec["proposed_by"],
                _iso(rec["proposed_at"]),
                rec["decided_by"] or "",
                _iso(rec["decided_at"]),
                rec["revoked_by"] or "",
                _iso(rec["revoked_at"]),
            ]
        )
    return buf.getvalue()


def _iso(value: Any) -> str:
    return value.isoformat() if value is not None else ""
