"""The zpy dialect's own records in SQLite: projects, datasets, simruns and their links.

Sims are the engine's generators and need no table; a simrun is one engine job
(same id), so its state and files come from the `JobService`. Everything is scoped
by owner (the token's account id).

Example:
    >>> import tempfile, pathlib
    >>> store = ZpyStore(pathlib.Path(tempfile.mkdtemp()) / "zpy.sqlite3")
    >>> project = store.default_project("acct-1")
    >>> store.get_project("acct-1", project["id"])["name"]
    'default'
    >>> store.get_project("acct-2", project["id"]) is None
    True
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect_synthdata.engine.statedb import open_state_db

SCHEMA = """
CREATE TABLE IF NOT EXISTS projects (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS datasets (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, project TEXT NOT NULL, name TEXT NOT NULL,
    created TEXT NOT NULL, state TEXT NOT NULL, sim TEXT, config TEXT, amount INTEGER,
    error TEXT, size_bytes INTEGER, sha256 TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS datasets_name ON datasets(project, name);
CREATE TABLE IF NOT EXISTS simruns (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, project TEXT NOT NULL, sim TEXT NOT NULL,
    params_key TEXT NOT NULL, config TEXT NOT NULL, created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS simruns_key ON simruns(owner, sim, params_key);
CREATE TABLE IF NOT EXISTS dataset_simruns (
    dataset TEXT NOT NULL, simrun TEXT NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (dataset, idx)
);
CREATE INDEX IF NOT EXISTS dataset_simruns_run ON dataset_simruns(simrun);
"""
#: Tables added later; a database without them gets every simrun's files recorded.
FILES_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, simrun TEXT NOT NULL, sim TEXT NOT NULL,
    sim_id TEXT NOT NULL, project TEXT NOT NULL, name TEXT NOT NULL, path TEXT NOT NULL,
    size_bytes INTEGER NOT NULL, created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS files_listing ON files(owner, created, simrun, name);
CREATE INDEX IF NOT EXISTS files_by_sim ON files(owner, sim_id, created, simrun, name);
CREATE INDEX IF NOT EXISTS files_simrun ON files(simrun);
CREATE TABLE IF NOT EXISTS unrecorded_simruns (simrun TEXT PRIMARY KEY, owner TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS unrecorded_simruns_owner ON unrecorded_simruns(owner);
"""
#: SQL expressions of the file fields zpy clients filter on (see `filters.sql_filters`).
FILE_COLUMNS = {
    "id": "id",
    "name": "name",
    "path": "path",
    "size_bytes": "CAST(size_bytes AS TEXT)",
    "created_at": "created",
    "run__id": "simrun",
    "run__name": "(sim || '-' || substr(simrun, 1, 8))",
    "run__sim": "sim_id",
    "run__state": "'READY'",
    "run__project": "project",
}
NAMESPACE = uuid.UUID("6f0d5a1e-3c1b-4f55-9a57-2b7c0e0f4d21")


def timestamp() -> str:
    """Now, in the zpy style `2021-07-08T16:48:33.560228Z`."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class DuplicateNameError(Exception):
    """A dataset of that name already exists in the project."""


class ZpyStore:
    """Thread-safe access to the zpy tables."""

    def __init__(self, path: Path) -> None:
        self._db = open_state_db(path, SCHEMA)
        self._db.row_factory = sqlite3.Row
        upgrade = not self._db.execute("SELECT 1 FROM sqlite_master WHERE name='files'").fetchall()
        self._db.executescript(FILES_SCHEMA)
        if upgrade:  # simruns of a server that did not record files yet: record them all
            self._db.execute(
                "INSERT OR IGNORE INTO unrecorded_simruns SELECT id, owner FROM simruns"
            )
        self._lock = threading.RLock()

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._db.execute(sql, args).fetchall()]

    def _execute(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        with self._lock:
            return self._db.execute(sql, args).rowcount

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (`BEGIN IMMEDIATE`), rolled back if the block raises."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- projects ------------------------------------------------------------------------
    def default_project(self, owner: str) -> dict[str, Any]:
        """The account's `default` project (a stable id derived from the account), created once."""
        project_id = str(uuid.uuid5(NAMESPACE, f"project:{owner}"))
        self._execute(
            "INSERT OR IGNORE INTO projects VALUES (?,?,?,?)",
            (project_id, owner, "default", timestamp()),
        )
        return self._rows("SELECT * FROM projects WHERE id=?", (project_id,))[0]

    def create_project(self, owner: str, name: str) -> dict[str, Any]:
        project = {"id": str(uuid.uuid4()), "owner": owner, "name": name, "created": timestamp()}
        self._execute("INSERT INTO projects VALUES (?,?,?,?)", tuple(project.values()))
        return project

    def get_project(self, owner: str, project_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM projects WHERE id=? AND owner=?", (project_id, owner))
        return rows[0] if rows else None

    def list_projects(self, owner: str) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM projects WHERE owner=? ORDER BY created, id", (owner,))

    # -- datasets ------------------------------------------------------------------------
    def create_dataset(self, owner: str, project: str, name: str) -> dict[str, Any]:
        """A new dataset in state CREATED; DuplicateNameError if the project has one of that name."""
        dataset_id = str(uuid.uuid4())
        try:
            self._execute(
                "INSERT INTO datasets (id, owner, project, name, created, state) VALUES (?,?,?,?,?,?)",
                (dataset_id, owner, project, name, timestamp(), "CREATED"),
            )
        except sqlite3.IntegrityError:
            raise DuplicateNameError(
                f"a dataset named {name!r} already exists in project {project}"
            ) from None
        return self.get_dataset(owner, dataset_id) or {}

    def get_dataset(self, owner: str | None, dataset_id: str) -> dict[str, Any] | None:
        """The dataset if `owner` owns it (any owner when None)."""
        rows = self._rows("SELECT * FROM datasets WHERE id=?", (dataset_id,))
        if not rows or (owner is not None and rows[0]["owner"] != owner):
            return None
        return rows[0]

    def list_datasets(self, owner: str) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM datasets WHERE owner=? ORDER BY created, id", (owner,))

    def datasets_in_states(self, states: tuple[str, ...]) -> list[dict[str, Any]]:
        marks = ",".join("?" * len(states))
        return self._rows(
            f"SELECT * FROM datasets WHERE state IN ({marks}) ORDER BY created", states
        )

    def start_generation(
        self, dataset_id: str, sim: str, config: dict[str, Any], amount: int, simruns: list[str]
    ) -> bool:
        """Move a CREATED dataset to GENERATING with its simruns; False if it was not CREATED."""
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE datasets SET state='GENERATING', sim=?, config=?, amount=? WHERE id=? AND state='CREATED'",
                (sim, json.dumps(config), amount, dataset_id),
            ).rowcount
            if changed:
                db.executemany(
                    "INSERT INTO dataset_simruns VALUES (?,?,?)",
                    [(dataset_id, run, i) for i, run in enumerate(simruns)],
                )
        return bool(changed)

    def set_state(
        self,
        dataset_id: str,
        state: str,
        error: str | None = None,
        size_bytes: int | None = None,
        sha256: str | None = None,
    ) -> None:
        self._execute(
            "UPDATE datasets SET state=?, error=?, size_bytes=?, sha256=? WHERE id=?",
            (state, error, size_bytes, sha256, dataset_id),
        )

    def set_state_from(
        self, dataset_id: str, current: tuple[str, ...], state: str, error: str | None = None
    ) -> bool:
        """Move a dataset to `state` only if it is in one of `current`; whether it moved."""
        marks = ",".join("?" * len(current))
        return bool(
            self._execute(
                f"UPDATE datasets SET state=?, error=? WHERE id=? AND state IN ({marks})",
                (state, error, dataset_id, *current),
            )
        )

    # -- simruns -------------------------------------------------------------------------
    def find_simruns(self, owner: str, sim: str, params_keys: list[str]) -> dict[str, list[str]]:
        """Existing simrun ids per params key (newest first) of `owner`'s runs of `sim`."""
        found: dict[str, list[str]] = {}
        for start in range(0, len(params_keys), 500):
            chunk = params_keys[start : start + 500]
            rows = self._rows(
                f"SELECT id, params_key FROM simruns WHERE owner=? AND sim=? AND params_key IN "
                f"({','.join('?' * len(chunk))}) ORDER BY created DESC",
                (owner, sim, *chunk),
            )
            for row in rows:
                found.setdefault(row["params_key"], []).append(row["id"])
        return found

    def add_simruns(
        self, owner: str, project: str, sim: str, runs: list[tuple[str, str, dict[str, Any]]]
    ) -> None:
        """Record new simruns: `(engine job id, params key, config)` each."""
        created = timestamp()
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO simruns VALUES (?,?,?,?,?,?,?)",
                [
                    (run_id, owner, project, sim, key, json.dumps(config), created)
                    for run_id, key, config in runs
                ],
            )
            db.executemany(
                "INSERT INTO unrecorded_simruns VALUES (?,?)", [(run[0], owner) for run in runs]
            )

    def list_simruns(self, owner: str, dataset_id: str | None = None) -> list[dict[str, Any]]:
        """`owner`'s simruns (of one dataset, in dataset order), each with its `datasets` ids."""
        if dataset_id is None:
            runs = self._rows("SELECT * FROM simruns WHERE owner=? ORDER BY created, id", (owner,))
        else:
            runs = self._rows(
                "SELECT simruns.* FROM dataset_simruns JOIN simruns ON simruns.id = dataset_simruns.simrun"
                " WHERE dataset_simruns.dataset=? AND simruns.owner=? ORDER BY dataset_simruns.idx",
                (dataset_id, owner),
            )
        links: dict[str, list[str]] = {}
        for row in self._rows(
            "SELECT dataset_simruns.simrun, dataset_simruns.dataset FROM dataset_simruns"
            " JOIN simruns ON simruns.id = dataset_simruns.simrun WHERE simruns.owner=?",
            (owner,),
        ):
            links.setdefault(row["simrun"], []).append(row["dataset"])
        for run in runs:
            run["config"] = json.loads(run["config"])
            run["datasets"] = sorted(set(links.get(run["id"], [])))
        return runs

    def simrun_owner(self, simrun_id: str) -> str | None:
        rows = self._rows("SELECT owner FROM simruns WHERE id=?", (simrun_id,))
        return rows[0]["owner"] if rows else None

    # -- files of finished simruns ---------------------------------------------------------
    def unrecorded_simruns(self, owner: str | None = None) -> list[dict[str, Any]]:
        """Simruns (of `owner`, or everyone's) whose files are not recorded yet, oldest first."""
        mine = "WHERE unrecorded_simruns.owner=?" if owner is not None else ""
        return self._rows(
            "SELECT simruns.* FROM unrecorded_simruns"
            f" JOIN simruns ON simruns.id = unrecorded_simruns.simrun {mine} ORDER BY created, id",
            (owner,) if owner is not None else (),
        )

    def record_files(self, run: dict[str, Any], sim_id: str, files: list[tuple[str, int]]) -> None:
        """Record the `(name, size)` files of a finished simrun, once (repeats change nothing)."""
        simrun, owner, sim, project, created = (
            run[k] for k in ("id", "owner", "sim", "project", "created")
        )
        rows = [
            (
                str(uuid.uuid5(NAMESPACE, f"file:{simrun}/{name}")),
                owner,
                simrun,
                sim,
                sim_id,
                project,
                name,
                f"{simrun}/{name}",
                size,
                created,
            )
            for name, size in files
        ]
        with self._transaction() as db:
            db.executemany("INSERT OR IGNORE INTO files VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
            db.execute("DELETE FROM unrecorded_simruns WHERE simrun=?", (simrun,))

    def forget_files(self, simrun_id: str) -> None:
        """Drop a simrun's file records (its folder is gone); they are recorded again when it is."""
        with self._transaction() as db:
            db.execute("DELETE FROM files WHERE simrun=?", (simrun_id,))
            db.execute(
                "INSERT OR IGNORE INTO unrecorded_simruns SELECT id, owner FROM simruns WHERE id=?",
                (simrun_id,),
            )

    def count_files(self, owner: str, where: str = "1", args: list[str] | None = None) -> int:
        """How many of `owner`'s files match the SQL condition `where` (see `FILE_COLUMNS`)."""
        rows = self._rows(
            f"SELECT COUNT(*) AS n FROM files WHERE owner=? AND ({where})", (owner, *(args or []))
        )
        return int(rows[0]["n"])

    def list_files(
        self, owner: str, where: str, args: list[str], limit: int, offset: int
    ) -> list[dict[str, Any]]:
        """One page of `owner`'s files matching `where`, in simrun order then by name."""
        return self._rows(
            f"SELECT * FROM files WHERE owner=? AND ({where})"
            " ORDER BY created, simrun, name LIMIT ? OFFSET ?",
            (owner, *args, limit, offset),
        )

    def get_file(self, owner: str, file_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM files WHERE id=? AND owner=?", (file_id, owner))
        return rows[0] if rows else None

    def close(self) -> None:
        with self._lock:
            self._db.close()
