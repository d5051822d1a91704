"""The emulator's catalogue of regulations, namespaces, type qualifiers and products (``catalog.json``).

It is a data file on purpose: the emulator does not import the client's catalogue, so a mistake there
shows up as a 400 here instead of being mirrored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class Catalog:
    regulations: tuple[str, ...]
    legacy_regulations: dict[str, str]
    standard_namespaces: dict[str, int]
    type_qualifiers: tuple[str, ...]
    products: dict[str, str]

    def namespace_id(self, namespace: str) -> int | None:
        """The namespaceId of a standard namespace; matching is case-insensitive as Adobe's examples imply."""
        wanted = namespace.lower()
        for name, namespace_id in self.standard_namespaces.items():
            if name.lower() == wanted:
                return namespace_id
        return None

    def product_display_name(self, include_code: str) -> str | None:
        """Display name for an ``include`` code; Adobe documents the codes as case-insensitive."""
        wanted = include_code.lower()
        for code, display_name in self.products.items():
            if code.lower() == wanted:
                return display_name
        return None


@cache
def load_catalog() -> Catalog:
    raw = json.loads(resources.files(__package__).joinpath("catalog.json").read_text(encoding="utf-8"))
    return Catalog(
        regulations=tuple(raw["regulations"]),
        legacy_regulations=dict(raw["legacy_regulations"]),
        standard_namespaces=dict(raw["standard_namespaces"]),
        type_qualifiers=tuple(raw["type_qualifiers"]),
        products=dict(raw["products"]),
    )
