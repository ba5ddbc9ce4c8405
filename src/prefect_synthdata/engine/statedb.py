"""Open a SQLite state database (WAL, busy timeout, schema), naming the file if it is unusable.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "state.sqlite3"
    >>> _ = path.write_bytes(b"not a database, just bytes" * 100)
    >>> open_state_db(path, "CREATE TABLE IF NOT EXISTS t (x)")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    prefect_synthdata.exceptions.StateFileError: state database ... is not a usable SQLite database (file is not a database); move it away or use another state directory
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from prefect_synthdata.exceptions import StateFileError


def open_state_db(path: Path, schema: str) -> sqlite3.Connection:
    """A connection to `path` (created if missing) with `schema` applied; StateFileError if unusable.

    Autocommit (`isolation_level=None`, explicit `BEGIN`s), WAL, a 30 s busy timeout,
    shareable across threads (callers lock around it).
    """
    try:
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    except sqlite3.Error as exc:
        raise StateFileError(path, f"state database {path} cannot be opened ({exc})") from None
    try:
        db.execute("PRAGMA busy_timeout=30000")
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(schema)
    except sqlite3.Error as exc:
        db.close()
        raise StateFileError(
            path, f"state database {path} is not a usable SQLite database ({exc})"
        ) from None
    return db
