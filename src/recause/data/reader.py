"""Strict reading of delimited text: a file that cannot be parsed fails here, with a message that
says where and why, before any value-level validation runs.

Values are kept as text; typing is the schema's job (see ``recause.data.schemas``), so a bad value
reaches the validation gate as itself instead of crashing the reader.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

import pandas as pd

from recause.errors import InputDataError

DELIMITERS = ("\t", ",", ";", "|")
_SHOWN = {"\t": "tab", ",": "','", ";": "';'", "|": "'|'"}


def decode_utf8(data: bytes, name: str) -> str:
    """UTF-8 text (a BOM is dropped); a bad byte is reported with its line and column."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        before = data[: error.start]
        line = before.count(b"\n") + 1
        column = error.start - (before.rfind(b"\n") + 1) + 1
        raise InputDataError(
            f"{name}: not UTF-8 text: byte 0x{data[error.start]:02x} at line {line}, column {column}"
        ) from None


def _guess_delimiter(header: str) -> str:
    counts = {sep: header.count(sep) for sep in DELIMITERS}
    best = max(counts, key=counts.__getitem__)
    return best if counts[best] else ","


def _field_count(line: str, sep: str, quoting: int) -> int:
    return len(next(csv.reader([line], delimiter=sep, quoting=quoting))) if line else 0


def read_delimited(
    data: bytes,
    name: str,
    required: Sequence[str] = (),
    sep: str | None = None,
    quoted: bool = True,
) -> pd.DataFrame:
    """Parse delimited text with a header into string columns (empty fields become nulls).

    Headers of RecBole atomic files (``field:type``) are reduced to the field name. Raises
    InputDataError for an empty file, non-UTF-8 bytes, missing required columns (with a hint when
    the delimiter looks wrong), rows with too many fields, and a truncated last line.
    """
    text = decode_utf8(data, name)
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise InputDataError(f"{name}: file is empty")
    if len(lines) < 2:
        raise InputDataError(f"{name}: has a header but no rows")
    delimiter = sep or _guess_delimiter(lines[0])
    quoting = csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE
    header = [
        field.split(":", 1)[0].strip() for field in next(csv.reader([lines[0]], delimiter=delimiter, quoting=quoting))
    ]

    missing = [column for column in required if column not in header]
    if missing:
        hint = ""
        others = [s for s in DELIMITERS if s != delimiter and s in lines[0]]
        if len(header) == 1 and others:
            hint = f" (the header is one field; is the delimiter {_SHOWN[others[0]]} rather than {_SHOWN[delimiter]}?)"
        raise InputDataError(f"{name}: missing column(s) {', '.join(missing)}; found {', '.join(header)}{hint}")

    last = lines[-1]
    if not text.endswith(("\n", "\r")) and _field_count(last, delimiter, quoting) < len(header):
        raise InputDataError(
            f"{name}: line {len(lines)} has {_field_count(last, delimiter, quoting)} of {len(header)} fields "
            "and no line end: the file looks truncated"
        )
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            quoting=quoting,
            header=0,
        )
    except pd.errors.ParserError as error:
        raise InputDataError(f"{name}: cannot be parsed: {str(error).strip().splitlines()[-1]}") from None
    frame.columns = header
    return frame
