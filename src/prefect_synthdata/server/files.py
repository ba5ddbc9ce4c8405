"""Files of finished zpy simruns, recorded in SQLite so `/api/v1/files/` pages in SQL.

A READY simrun's files are recorded once (`ZpyStore.record_files`): at startup for
every simrun finished before (an upgraded data dir is back-filled), and before each
listing for simruns finished since. A listing is then one `COUNT` and one
`LIMIT/OFFSET` query on an index, whatever the account holds; only the simruns on
the page are checked in the results store (a simrun whose result was removed is
forgotten, and recorded again if it is rendered again).

Example:
    >>> import tempfile, pathlib
    >>> from pydantic import SecretStr
    >>> from prefect_synthdata.server.config import ServerConfig
    >>> from prefect_synthdata.server.context import ServerContext
    >>> ctx = ServerContext.open(ServerConfig(data_dir=pathlib.Path(tempfile.mkdtemp()), tokens=[SecretStr("t")], workers=1))
    >>> index = FileIndex(ctx)
    >>> index.catch_up(), index.page(ctx.tokens.owners[0], [], page=1, size=10)
    (0, (0, []))
    >>> ctx.close()
"""

from __future__ import annotations

from typing import Any

from prefect_synthdata.exceptions import NotFoundError
from prefect_synthdata.server.context import ServerContext
from prefect_synthdata.server.datasets import sim_id
from prefect_synthdata.server.filters import sql_filters
from prefect_synthdata.server.store import FILE_COLUMNS

#: The filterable fields of a file record (`run` is the simrun, compared by id).
FILE_FIELDS = {
    **dict.fromkeys(["id", "name", "path", "size_bytes", "created_at"]),
    "run": dict.fromkeys(["id", "name", "sim", "state", "project"]),
}


class FileIndex:
    """Records and lists the files of READY simruns for one `ServerContext`."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    def catch_up(self, owner: str | None = None) -> int:
        """Record the files of every READY simrun (of `owner`) not recorded yet; how many simruns."""
        recorded = 0
        for run in self.ctx.store.unrecorded_simruns(owner):
            try:  # from the results store: a folder, or on S3 the job's marker
                files = self.ctx.service.result_files(run["id"])
            except NotFoundError:  # not finished (yet), failed, or its result is gone
                continue
            self.ctx.store.record_files(run, sim_id(run["sim"]), files)
            recorded += 1
        return recorded

    def page(
        self, owner: str, filters: list[tuple[str, str]], page: int, size: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """`(count, records)`: page `page` of `size` of `owner`'s files matching `filters`."""
        self.catch_up(owner)
        where, args = sql_filters(filters, FILE_FIELDS, FILE_COLUMNS)
        while True:
            rows = self.ctx.store.list_files(owner, where, args, size, (page - 1) * size)
            if not self._forget_gone({row["simrun"] for row in rows}):
                return self.ctx.store.count_files(owner, where, args), [_record(r) for r in rows]

    def get(self, owner: str, file_id: str) -> dict[str, Any] | None:
        """One of `owner`'s file records by id, or None."""
        self.catch_up(owner)
        row = self.ctx.store.get_file(owner, file_id)
        if row is None or self._forget_gone({row["simrun"]}):
            return None
        return _record(row)

    def _forget_gone(self, simruns: set[str]) -> bool:
        """Forget the files of those `simruns` that no longer have a result; whether any had."""
        gone = False
        for simrun in simruns:
            try:
                self.ctx.service.result_files(simrun)  # a look-up and a listing (S3: one GET)
            except NotFoundError:
                self.ctx.store.forget_files(simrun)
                gone = True
        return gone


def _record(row: dict[str, Any]) -> dict[str, Any]:
    """The zpy file record of a `files` row (the signed `url` is added by the route)."""
    return {
        "id": row["id"],
        "name": row["name"],
        "path": row["path"],
        "size_bytes": row["size_bytes"],
        "run": row["simrun"],
        "created_at": row["created"],
    }
