"""Extension points the staff UI offers to domain apps, filled in their ``AppConfig.ready()``.

- ``register_nav``: an entry in the main navigation.
- ``register_person_panel``: a panel on the person 360° view (consent, deals, cases, …),
  rendered from the app's own template with context from the app's own selector.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    icon: str = ""
    order: int = 100
    # Show the item only when this returns True for the user (None: every signed-in user).
    allowed: Callable[[Any], bool] | None = None


@dataclass(frozen=True)
class PersonPanel:
    key: str
    template: str
    # context(request, person) -> dict merged into the panel's template context.
    context: Callable[[Any, Any], dict]
    order: int = 100
    allowed: Callable[[Any], bool] | None = None


NAV: list[NavItem] = []
PERSON_PANELS: list[PersonPanel] = []


def register_nav(item: NavItem) -> None:
    if all(existing.url_name != item.url_name for existing in NAV):
        NAV.append(item)
        NAV.sort(key=lambda i: i.order)


def register_person_panel(panel: PersonPanel) -> None:
    if all(existing.key != panel.key for existing in PERSON_PANELS):
        PERSON_PANELS.append(panel)
        PERSON_PANELS.sort(key=lambda p: p.order)


def nav_for(user: Any) -> list[NavItem]:
    return [i for i in NAV if i.allowed is None or i.allowed(user)]


def person_panels_for(user: Any) -> list[PersonPanel]:
    return [p for p in PERSON_PANELS if p.allowed is None or p.allowed(user)]
