"""Where a raw insert's time goes at import sizes (A3): the floor under bench/import.py's baseline.

    .venv/bin/python bench/import_floor.py --size 300000 [--postgres] [--ids uuid4|chunk]
        [--cache-mb N] [--drop INDEX,...]

Pre-loads ``size / 5`` existing people (as bench/import.py does), then inserts ``size`` rows
(Person + two ContactPoints, the baseline's rows) raw in transactions of 2,000 rows, printing
the rate for each tenth of the run: a rate that falls as the tables grow is the indexes'
pages falling out of the cache. Variants: ``--ids chunk`` gives each chunk's ids one random
prefix (``imports.bulk.new_hex_ids``' chunk-local ids) instead of ``uuid4``; ``--cache-mb``
sets SQLite's ``cache_size`` for this connection; ``--drop`` drops the named indexes first
(to attribute the cost; never in the product).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--ids", choices=["uuid4", "chunk"], default="uuid4")
    extra.add_argument("--cache-mb", type=int, default=0)
    extra.add_argument("--drop", default="")
    options, rest = extra.parse_known_args()
    from _common import ServerCPU, bench_args, boot

    # --postgres re-runs this script with the same argv: bench_args must ignore ours
    saved = sys.argv
    sys.argv = [saved[0], *rest]
    args = bench_args("raw insert floor", default_size=300_000)
    sys.argv = saved
    vendor = boot(args)
    import datetime as dt
    import importlib.util
    import uuid

    from django.db import connection, transaction

    spec = importlib.util.spec_from_file_location("bench_import", Path(__file__).resolve().parent / "import.py")
    bench_import = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_import)
    from rapport.imports import bulk
    from rapport.people.models import ContactPoint, Person

    size = args.size
    start = time.perf_counter()
    bench_import._preload(size // 5)
    print(f"{vendor}: pre-loaded {size // 5:,} people in {time.perf_counter() - start:.1f}s; ids {options.ids}, "
          f"cache {options.cache_mb or 'default'} MB, dropped {options.drop or 'nothing'}")
    with connection.cursor() as cursor:
        for name in filter(None, options.drop.split(",")):
            cursor.execute(f"DROP INDEX {name}")
        if vendor == "sqlite" and options.cache_mb:
            cursor.execute(f"PRAGMA cache_size = -{options.cache_mb * 1024}")
        if vendor == "postgresql":
            cursor.execute("ANALYZE")
    person = bench_import._RawTable(Person, ["id", "created_at", "updated_at", "given_name", "family_name"])
    point = bench_import._RawTable(ContactPoint, ["id", "created_at", "updated_at", "person_id", "kind", "value",
                                                  "normalised", "search_key"])
    native = connection.features.has_native_uuid_field

    def ids(count: int) -> list:
        if options.ids == "chunk":
            made = bulk.new_hex_ids(count)
            return [uuid.UUID(i) for i in made] if native else made
        return [uuid.uuid4() if native else uuid.uuid4().hex for _ in range(count)]

    server = ServerCPU(connection)
    waited = _scheduler_wait()
    tenth = max(size // 10, 2000)
    total_wall, total_cpu = time.perf_counter(), time.process_time()
    wall, cpu = total_wall, total_cpu
    for begin in range(0, size, 2000):
        now = connection.ops.adapt_datetimefield_value(dt.datetime.now(dt.UTC))
        n = min(2000, size - begin)
        person_ids, point_ids = ids(n), ids(2 * n)
        people, points = [], []
        for k in range(n):
            i = begin + k
            pid = person_ids[k]
            email, phone = f"p{i}.{i % 97}@example.com", f"07{500_000_000 + i:09d}"
            people.append((pid, now, now, "Ada", "Lovelace"))
            points.append((point_ids[2 * k], now, now, pid, "email", email, email, email))
            points.append((point_ids[2 * k + 1], now, now, pid, "phone", phone, phone, phone))
        with transaction.atomic():
            person.insert(people)
            point.insert(points)
        done = begin + n
        if done % tenth == 0 or done == size:
            print(f"  rows {done - tenth:>9,}–{done:>9,}: {tenth / (time.perf_counter() - wall):>8,.0f} rows/s wall, "
                  f"{tenth / (time.process_time() - cpu):>8,.0f} rows/CPU-s")
            wall, cpu = time.perf_counter(), time.process_time()
    seconds, cpu_seconds = time.perf_counter() - total_wall, time.process_time() - total_cpu
    server_cpu = server.used()
    print(f"{vendor}: {size:,} rows in {seconds:.1f}s wall ({size / seconds:,.0f} rows/s), "
          f"{cpu_seconds:.1f}s CPU ({size / cpu_seconds:,.0f} rows/CPU-s), waiting for a core "
          f"{_scheduler_wait() - waited:.1f}s" + (f", server CPU {server_cpu:.1f}s" if server_cpu is not None else ""))


def _scheduler_wait() -> float:
    """Seconds this process was runnable but waiting for a core (``/proc/self/schedstat``):
    wall minus CPU minus this is time blocked (I/O, fsync)."""
    try:
        return int(Path("/proc/self/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


if __name__ == "__main__":
    main()
