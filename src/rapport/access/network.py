"""S4 — where a request comes from, and whether a user may work from there.

The client address is ``REMOTE_ADDR``: Rapport trusts no forwarding header unless the
deployment names its proxies in ``RAPPORT_TRUSTED_PROXIES`` (then the right-most address
of ``X-Forwarded-For`` not belonging to a trusted proxy is used). Audit entries, lock-out
(django-axes) and IP restrictions all use this one function.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from django.conf import settings

from rapport.access.policy import access_context

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_ip(request: Any) -> str:
    """The caller's address, normalised (IPv4-mapped IPv6 becomes IPv4); "" when unknown."""
    if request is None:
        return ""
    remote = _normalise(request.META.get("REMOTE_ADDR", ""))
    proxies = _trusted_proxies()
    if proxies and remote and _within(remote, proxies):
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
        for hop in reversed(hops):
            address = _normalise(hop)
            if not address:
                break
            if not _within(address, proxies):
                return address
    return remote


def parse_networks(values: Iterable[str]) -> list[Network]:
    """CIDR strings (``10.0.0.0/8``, ``2001:db8::/32``, or a bare address) as networks.

    Raises ``ValueError`` naming the first value that is not a network.
    """
    networks = []
    for value in values:
        text = str(value).strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError as err:
            raise ValueError(f"{text!r} is not an IPv4 or IPv6 address or CIDR range.") from err
    return networks


def address_allowed(address: str, role_networks: Iterable[str], user_networks: Iterable[str]) -> bool:
    """Both the role's and the user's ranges apply; an empty list means "anywhere"."""
    for ranges in (list(role_networks), list(user_networks)):
        if ranges and not (address and _within(address, tuple(_cached_networks(tuple(ranges))))):
            return False
    return True


def user_may_connect(user: Any, request: Any) -> bool:
    """Whether ``user`` may sign in or work from the request's address."""
    ctx = access_context(user)
    if not ctx.networks and not ctx.user_networks:
        return True
    return address_allowed(client_ip(request), ctx.networks, ctx.user_networks)


@lru_cache(maxsize=256)
def _cached_networks(ranges: tuple[str, ...]) -> tuple[Network, ...]:
    try:
        return tuple(parse_networks(ranges))
    except ValueError:
        return ()  # a broken stored range allows nothing rather than everything


def _within(address: str, networks: Iterable[Network]) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip.version == net.version and ip in net for net in networks)


def _normalise(value: str) -> str:
    value = value.strip()
    if value.startswith("[") and "]" in value:
        value = value[1:value.index("]")]
    value = value.split("%", 1)[0]  # drop an IPv6 zone id
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.compressed


def _trusted_proxies() -> tuple[Network, ...]:
    return _cached_networks(tuple(getattr(settings, "RAPPORT_TRUSTED_PROXIES", ()) or ()))
