"""S7 — rate limits per API token and per client address, answered with 429 + Retry-After.

Counters are rows in fixed one-window buckets (``RateLimitCounter``), incremented with a
single ``INSERT … ON CONFLICT DO UPDATE SET count = count + 1 RETURNING count``, so every web process shares them (a per-process
cache would multiply the limit by the number of workers). Rates are DRF rate strings
(``"1200/min"``); ``"off"`` disables a limit.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from rapport.access.models import ApiToken, RateLimitCounter
from rapport.access.network import client_ip

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class _WindowThrottle(BaseThrottle):
    scope = ""

    def __init__(self) -> None:
        self.rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        self.limit, self.period = parse_rate(self.rate)
        self.wait_seconds: float | None = None

    def key(self, request: Any) -> str | None:
        raise NotImplementedError

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.limit is None:
            return True
        key = self.key(request)
        if key is None:
            return True
        now = time.time()
        window_start = int(now // self.period) * self.period
        count = hit(f"{key}/{self.period}", window_start)
        if secrets.randbelow(1000) == 0:
            purge_old_windows()  # now and then, instead of a scheduled job
        if count > self.limit:
            self.wait_seconds = window_start + self.period - now
            return False
        return True

    def wait(self) -> float | None:
        return self.wait_seconds


class TokenRateThrottle(_WindowThrottle):
    scope = "token"

    def key(self, request: Any) -> str | None:
        token = request.auth
        return f"token:{token.prefix}" if isinstance(token, ApiToken) else None


class AddressRateThrottle(_WindowThrottle):
    scope = "address"

    def key(self, request: Any) -> str | None:
        address = client_ip(request)
        return f"ip:{address}" if address else None


def parse_rate(rate: str | None) -> tuple[int | None, int]:
    if not rate or rate.strip().lower() in {"off", "none", "0"}:
        return None, 1
    number, _, period = rate.partition("/")
    return int(number), PERIODS[period.strip()[:1].lower()]


def hit(key: str, window: int) -> int:
    """Count one request for ``key`` in the window starting at ``window`` (epoch seconds).

    Returns the count including this request. One statement (``INSERT … ON CONFLICT DO
    UPDATE … RETURNING``, accepted alike by PostgreSQL and SQLite ≥ 3.35) instead of a
    transaction of update, maybe insert, and read back: it runs on every API request twice
    (token and address), so its round trips were a measurable share of a small request.
    """
    if connection.features.can_return_rows_from_bulk_insert:  # SQLite ≥ 3.35, PostgreSQL
        return _upsert(key, window)
    with transaction.atomic():
        updated = RateLimitCounter.objects.filter(key=key, window=window).update(count=F("count") + 1)
        if not updated:
            try:
                with transaction.atomic():
                    RateLimitCounter.objects.create(key=key, window=window, count=1)
                return 1
            except IntegrityError:  # another process created it first
                RateLimitCounter.objects.filter(key=key, window=window).update(count=F("count") + 1)
        return RateLimitCounter.objects.filter(key=key, window=window).values_list("count", flat=True).first() or 1


def _upsert(key: str, window: int) -> int:
    quote = connection.ops.quote_name
    table = quote(RateLimitCounter._meta.db_table)
    key_col, window_col, count_col = quote("key"), quote("window"), quote("count")
    sql = (f"INSERT INTO {table} ({key_col}, {window_col}, {count_col}) VALUES (%s, %s, 1) "  # noqa: S608 - model metadata only
           f"ON CONFLICT ({key_col}, {window_col}) DO UPDATE SET {count_col} = {table}.{count_col} + 1 "
           f"RETURNING {count_col}")
    with connection.cursor() as cursor:
        cursor.execute(sql, [key, window])
        row = cursor.fetchone()
    return int(row[0]) if row else 1


def purge_old_windows(older_than_seconds: int = 3600) -> int:
    """Drop counters of windows that ended long ago."""
    cutoff = int(time.time() - older_than_seconds)
    deleted, _ = RateLimitCounter.objects.filter(window__lt=cutoff).delete()
    return deleted
