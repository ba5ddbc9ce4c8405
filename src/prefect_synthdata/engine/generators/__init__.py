"""The generator registry: the built-ins plus every generator other packages register.

A package registers generators under the entry-point group `prefect_synthdata.generators`
(in its pyproject.toml), naming a `Generator` subclass (made with no arguments) or
instance; the entry-point name is the generator's name:

    [project.entry-points."prefect_synthdata.generators"]
    discs = "synthdata_discs:DiscsGenerator"

The registry loads on first use (so importing this package stays cheap), checks each
plugin's definition (`contract.check_definition`) and keeps the ones that fail out of
`GENERATORS`, listed with their reason in `GENERATORS.unavailable`; the rest keep
working. Asking for an unavailable generator raises UnknownGeneratorError with that reason.

Example:
    >>> get_generator("shapes").spec.name
    'shapes'
    >>> "shapes" in GENERATORS and "shapes" not in GENERATORS.unavailable
    True
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib.metadata import EntryPoint, entry_points

from prefect_synthdata.engine.generators.base import Frame, Generator, Instance
from prefect_synthdata.engine.generators.contract import check_definition
from prefect_synthdata.engine.generators.shapes import ShapesGenerator
from prefect_synthdata.engine.generators.tabletop import TabletopGenerator
from prefect_synthdata.exceptions import GeneratorContractError, UnknownGeneratorError

ENTRY_POINT_GROUP = "prefect_synthdata.generators"
#: Set in each render process to its share of the cores, for generators that use threads.
RENDER_THREADS_ENV = "SYNTHDATA_RENDER_THREADS"
BUILT_IN: tuple[type[Generator], ...] = (ShapesGenerator, TabletopGenerator)


class Registry(Mapping[str, Generator]):
    """Usable generators by name (a read-only mapping), loaded on first use.

    `unavailable` maps the name of each plugin that could not be used to the reason.
    """

    def __init__(self) -> None:
        self._usable: dict[str, Generator] | None = None
        self._unavailable: dict[str, str] = {}

    def reload(self) -> None:
        """Forget what was loaded; the next use scans the entry points again."""
        self._usable, self._unavailable = None, {}

    @property
    def unavailable(self) -> dict[str, str]:
        self._load()
        return dict(self._unavailable)

    def _load(self) -> dict[str, Generator]:
        if self._usable is None:
            usable: dict[str, Generator] = {cls.spec.name: cls() for cls in BUILT_IN}
            by_name: dict[str, list[EntryPoint]] = {}
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                by_name.setdefault(ep.name, []).append(ep)
            for name, eps in sorted(by_name.items()):
                try:
                    usable[name] = _load_plugin(name, eps, taken=usable)
                except GeneratorContractError as exc:
                    self._unavailable[name] = exc.reason
            self._usable = usable
        return self._usable

    def __getitem__(self, name: str) -> Generator:
        return self._load()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


def _load_plugin(name: str, eps: list[EntryPoint], taken: Mapping[str, Generator]) -> Generator:
    """The generator entry points `eps` register as `name`, checked; GeneratorContractError if not."""
    if name in taken:
        raise GeneratorContractError(name, "the name of a built-in generator")
    if len(eps) > 1:
        where = ", ".join(sorted(ep.value for ep in eps))
        raise GeneratorContractError(name, f"registered more than once ({where})")
    try:
        obj = eps[0].load()
        generator = obj() if isinstance(obj, type) else obj
    except Exception as exc:  # a plugin's import may raise anything; report it, keep the rest
        raise GeneratorContractError(
            name, f"cannot load {eps[0].value}: {type(exc).__name__}: {exc}"
        ) from None
    return check_definition(name, generator)


GENERATORS = Registry()


def get_generator(name: str) -> Generator:
    """The generator called `name`, or UnknownGeneratorError listing the known ones
    (or saying why a registered plugin of that name is unavailable)."""
    try:
        return GENERATORS[name]
    except KeyError:
        reason = GENERATORS.unavailable.get(name)
        if reason is not None:
            raise UnknownGeneratorError(f"generator {name!r} is unavailable: {reason}") from None
        known = ", ".join(sorted(GENERATORS))
        raise UnknownGeneratorError(f"unknown generator {name!r}; known: {known}") from None


__all__ = [
    "ENTRY_POINT_GROUP",
    "GENERATORS",
    "RENDER_THREADS_ENV",
    "Frame",
    "Generator",
    "Instance",
    "get_generator",
]
