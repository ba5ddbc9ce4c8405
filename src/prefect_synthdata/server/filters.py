"""Django-style list filters and `{count, next, previous, results}` pagination for the zpy dialect.

A filter is `field[__field...][__lookup]=value`; a `~` prefix negates it. Lookups:
`exact` (default), `iexact`, `contains`, `icontains`, `startswith`, `istartswith`,
`endswith`, `iendswith`, `in` (comma list) and `isnull`. A field holding a list
matches when any element does; a field holding a record compares its `id`.

Example:
    >>> rows = [{"name": "cars", "run": {"sim": "s1"}}, {"name": "bikes", "run": {"sim": "s2"}}]
    >>> fields = {"name": None, "run": {"sim": None}}
    >>> [r["name"] for r in apply_filters(rows, [("run__sim", "s2")], fields)]
    ['bikes']
    >>> [r["name"] for r in apply_filters(rows, [("~name__icontains", "CAR")], fields)]
    ['bikes']
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request

from prefect_synthdata.server.errors import ApiError

LOOKUPS = {"exact", "iexact", "contains", "icontains", "startswith", "istartswith", "endswith",
           "iendswith", "in", "isnull"}  # fmt: skip
PAGINATION = {"page", "page-size", "page_size", "format"}
MAX_PAGE_SIZE = 1000
MAX_IN_VALUES = 1000  # of one `__in` filter compiled to SQL
DEFAULT_PAGE_SIZE = 100
ANY = object()  # a template value: any sub-field may be filtered on


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def _compare(value: Any, lookup: str, wanted: str) -> bool:
    if isinstance(value, list):
        return any(_compare(v, lookup, wanted) for v in value)
    if isinstance(value, dict):
        value = value.get("id")
    if lookup == "isnull":
        return (value is None) == (wanted.lower() in ("1", "true", "yes"))
    text = _text(value)
    if lookup == "in":
        return text in wanted.split(",")
    if lookup.startswith("i") or isinstance(value, bool):
        text, wanted = text.lower(), wanted.lower()
        lookup = lookup.removeprefix("i")
    if lookup == "exact":
        return text == wanted
    if lookup == "contains":
        return wanted in text
    if lookup == "startswith":
        return text.startswith(wanted)
    return text.endswith(wanted)


def _resolve(row: Any, path: list[str]) -> Any:
    value: Any = row
    for part in path:
        if isinstance(value, list):
            value = [v.get(part) if isinstance(v, dict) else None for v in value]
        else:
            value = value.get(part) if isinstance(value, dict) else None
    return value


def _check_field(fields: dict[str, Any], path: list[str], key: str) -> None:
    """ApiError unless `path` names a field of the `fields` template (`ANY` = open-ended)."""
    node: Any = fields
    for part in path:
        if node is ANY:
            return
        if not isinstance(node, dict) or part not in node:
            raise ApiError(400, f"unknown filter {key!r}: no field {part!r}")
        node = node[part]


def parse_filter(key: str, fields: dict[str, Any]) -> tuple[bool, list[str], str]:
    """`(negated, field path, lookup)` of a filter key; ApiError if malformed or unknown.

    Example:
        >>> parse_filter("~path__icontains", {"path": None})
        (True, ['path'], 'icontains')
    """
    negate = key.startswith("~")
    parts = key.removeprefix("~").split("__")
    lookup = parts.pop() if len(parts) > 1 and parts[-1] in LOOKUPS else "exact"
    if not parts or not all(parts):
        raise ApiError(400, f"malformed filter {key!r}")
    _check_field(fields, parts, key)
    return negate, parts, lookup


def filters_of(params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The filter parameters among a query's parameters (pagination ones left out)."""
    return [(key, value) for key, value in params if key not in PAGINATION]


def apply_filters(
    rows: list[dict[str, Any]], params: list[tuple[str, str]], fields: dict[str, Any]
) -> list[dict[str, Any]]:
    """Rows matching every filter in `params`; `fields` is the template of filterable fields.

    Pagination parameters are ignored; a filter on a field not in `fields` is an ApiError.
    """
    selected = rows
    for key, wanted in filters_of(params):
        negate, parts, lookup = parse_filter(key, fields)
        selected = [r for r in selected if _compare(_resolve(r, parts), lookup, wanted) != negate]
    return selected


def sql_filters(
    params: list[tuple[str, str]], fields: dict[str, Any], columns: dict[str, str]
) -> tuple[str, list[str]]:
    """The filters of `params` as one SQL condition and its arguments, same meaning as `apply_filters`.

    `columns` maps a field path (`run__sim`; a record field means its `__id`) to an SQL
    expression of TEXT values that are never NULL. Case-insensitive lookups fold ASCII case.

    Example:
        >>> sql_filters([("~path__icontains", "X"), ("page", "2")], {"path": None}, {"path": "path"})
        ('NOT (instr(lower(path), lower(?)) > 0)', ['X'])
    """
    conditions, args = [], []
    for key, wanted in filters_of(params):
        negate, parts, lookup = parse_filter(key, fields)
        path = "__".join(parts)
        column = columns.get(path) or columns[f"{path}__id"]
        if lookup == "isnull":
            condition = "0" if wanted.lower() in ("1", "true", "yes") else "1"
            values: list[str] = []
        elif lookup == "in":
            values = wanted.split(",")
            if len(values) > MAX_IN_VALUES:
                raise ApiError(400, f"filter {key!r} takes at most {MAX_IN_VALUES} values")
            condition = f"{column} IN ({','.join('?' * len(values))})"
        else:
            if lookup.startswith("i"):
                column, lookup = f"lower({column})", lookup.removeprefix("i")
                mark = "lower(?)"
            else:
                mark = "?"
            condition = {
                "exact": f"{column} = {mark}",
                "contains": f"instr({column}, {mark}) > 0",
                "startswith": f"substr({column}, 1, length({mark})) = {mark}",
                "endswith": f"length({column}) >= length({mark})"
                f" AND substr({column}, length({column}) - length({mark}) + 1) = {mark}",
            }[lookup]
            values = [wanted] * condition.count(mark)
        conditions.append(f"NOT ({condition})" if negate else condition)
        args.extend(values)
    return " AND ".join(conditions) or "1", args


def _page_number(request: Request, name: str, default: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise ApiError(400, f"{name!r} must be an integer from 1 to {maximum}, got {raw!r}")
    return int(raw)


def page_window(request: Request) -> tuple[int, int]:
    """`(page, page size)` asked for by `page` and `page-size` (or `page_size`), validated."""
    size = _page_number(request, "page-size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    size = _page_number(request, "page_size", size, MAX_PAGE_SIZE)
    return _page_number(request, "page", 1, 10**9), size


def page_body(
    request: Request, count: int, page: int, size: int, results: list[dict[str, Any]]
) -> dict[str, Any]:
    """`{count, next, previous, results}` of page `page` of `count` rows; 404 past the last page.

    `next`/`previous` are on the server's public base URL, not the request's `Host`.
    """
    pages = max(1, -(-count // size))
    if page > pages:
        raise ApiError(404, f"invalid page {page}: there are {pages} page(s)")
    public_url: str = request.app.state.context.config.public_url

    def link(number: int) -> str:
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "page"] + [
            ("page", str(number))
        ]
        return f"{public_url}{request.url.path}?{urlencode(query)}"

    return {
        "count": count,
        "next": link(page + 1) if page < pages else None,
        "previous": link(page - 1) if page > 1 else None,
        "results": results,
    }


def paginate(request: Request, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One page of `rows` with `count`, `next` and `previous` URLs (`page`, `page-size` params)."""
    page, size = page_window(request)
    return page_body(request, len(rows), page, size, rows[(page - 1) * size : page * size])
