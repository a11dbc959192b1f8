"""S5 — SQLite's WAL checkpoint size is SQLite's default unless set (settings, round 5 of
docs/performance/access.md: where the checkpoints of audited reads fall)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

SRC = str(Path(__file__).resolve().parents[3])
PROBE = """
import django; django.setup()
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("PRAGMA wal_autocheckpoint")
    print(cursor.fetchone()[0])
"""


@pytest.mark.parametrize(("env", "pages"), [({}, "1000"), ({"RAPPORT_SQLITE_WAL_AUTOCHECKPOINT": "4000"}, "4000")])
def test_the_wal_checkpoint_size_reaches_every_connection(db, tmp_path, env, pages):
    if connection.vendor != "sqlite":
        pytest.skip("a SQLite setting")
    environ = {k: v for k, v in os.environ.items() if k != "RAPPORT_SQLITE_WAL_AUTOCHECKPOINT"}
    environ.update(env, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", RAPPORT_VAR_DIR=str(tmp_path),
                   DJANGO_SETTINGS_MODULE="rapport.settings", PYTHONPATH=SRC)
    found = subprocess.run([sys.executable, "-c", PROBE], env=environ, capture_output=True, text=True, timeout=120)
    assert found.returncode == 0 and found.stdout.strip() == pages, found
