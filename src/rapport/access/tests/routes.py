"""Test machinery: every route of the URL map, with its arguments, so permission tests cover
endpoints added later without a second list (used by the authorisation matrix)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.urls import URLPattern, URLResolver, reverse
from django.urls.converters import UUIDConverter


@dataclass
class Route:
    name: str                      # "people:person-detail" (namespaced)
    path: str                      # a readable template, e.g. "/people/<pk>/"
    callback: Any
    converters: dict[str, Any] = field(default_factory=dict)

    @property
    def uuid_args(self) -> list[str]:
        return [n for n, c in self.converters.items() if isinstance(c, UUIDConverter)]

    @property
    def other_args(self) -> list[str]:
        return [n for n, c in self.converters.items() if not isinstance(c, UUIDConverter)]

    def fill(self, values: dict[str, Any]) -> str:
        return reverse(self.name, kwargs={k: values[k] for k in self.converters})

    @property
    def view_class(self) -> Any:
        return getattr(self.callback, "cls", None) or getattr(self.callback, "view_class", None)


def iter_routes(resolver: URLResolver, prefix: str = "/", namespace: str = "",
                converters: dict[str, Any] | None = None) -> Iterator[Route]:
    for entry in resolver.url_patterns:
        text = str(entry.pattern)
        merged = {**(converters or {}), **getattr(entry.pattern, "converters", {})}
        if isinstance(entry, URLResolver):
            ns = ":".join(p for p in (namespace, entry.namespace) if p)
            yield from iter_routes(entry, prefix + text, ns, merged)
        elif isinstance(entry, URLPattern) and entry.name:
            name = f"{namespace}:{entry.name}" if namespace else entry.name
            yield Route(name=name, path=prefix + text, callback=entry.callback, converters=merged)
