"""The registry of built-in generators.

Example:
    >>> get_generator("shapes").spec.name
    'shapes'
"""

from __future__ import annotations

from prefect_synthdata.engine.generators.base import Frame, Generator, Instance
from prefect_synthdata.engine.generators.shapes import ShapesGenerator
from prefect_synthdata.engine.generators.tabletop import TabletopGenerator
from prefect_synthdata.exceptions import UnknownGeneratorError

GENERATORS: dict[str, Generator] = {
    g.spec.name: g for g in (ShapesGenerator(), TabletopGenerator())
}


def get_generator(name: str) -> Generator:
    """The generator called `name`, or UnknownGeneratorError listing the known ones."""
    try:
        return GENERATORS[name]
    except KeyError:
        known = ", ".join(sorted(GENERATORS))
        raise UnknownGeneratorError(f"unknown generator {name!r}; known: {known}") from None


__all__ = ["GENERATORS", "Frame", "Generator", "Instance", "get_generator"]
