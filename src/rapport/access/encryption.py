"""S6 — encryption of sensitive fields at rest, blind indexes for exact lookups, key rotation.

Values are sealed with AES-256-GCM (``cryptography``) under a key id: the column holds
``"<key id>$<base64(nonce + ciphertext + tag)>"``, and the associated data names the column
(``people.Person.income_band``) so a ciphertext cannot be moved to another column unnoticed.

A random nonce means equal values encrypt differently, so ``=`` cannot work on the column.
Exact lookups go through a *blind index*: a sibling column holding
``"<key id>:" + HMAC-SHA256(index key, column name + value)``; ``blind_q`` builds the lookup
for every key id still known, so search keeps working while a rotation is half way.

Keys live in ``RAPPORT_ENCRYPTION_KEYS`` (JSON, for deployments that inject secrets) or in
``var/keys.json`` (created on first use, mode 600). ``rapport keys rotate`` adds a key, makes
it active and re-encrypts and re-indexes every row in batches; run again after an
interruption, it resumes instead of starting another rotation.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from django.db.models import Lookup, Q

KEY_BYTES = 32
NONCE_BYTES = 12


class DecryptionError(Exception):
    """A stored value could not be decrypted (unknown key id or tampered ciphertext)."""


# ---------------------------------------------------------------------------------- keyring


@dataclass
class Keyring:
    """The encryption keys by id, the active one, and the audit chain's HMAC key."""

    active: str
    keys: dict[str, bytes]
    audit_key: bytes
    source: Path | None = None  # the file it came from (None when from the environment)
    _index_keys: dict[str, bytes] = field(default_factory=dict, repr=False)

    def key(self, key_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError as err:
            raise DecryptionError(f"Unknown encryption key id {key_id!r}.") from err

    def index_key(self, key_id: str) -> bytes:
        """The blind-index key derived from an encryption key (rotates with it)."""
        if key_id not in self._index_keys:
            self._index_keys[key_id] = hmac.new(self.key(key_id), b"rapport blind index v1",
                                                hashlib.sha256).digest()
        return self._index_keys[key_id]

    def to_json(self) -> dict[str, Any]:
        return {
            "active": self.active,
            "keys": {kid: _b64(k) for kid, k in self.keys.items()},
            "audit_key": _b64(self.audit_key),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], source: Path | None = None) -> Keyring:
        try:
            keys = {str(kid): _unb64(value) for kid, value in data["keys"].items()}
            active = str(data["active"])
            audit_key = _unb64(data["audit_key"])
        except (KeyError, TypeError, ValueError) as err:
            raise ImproperlyConfigured(
                "Encryption keys need {'active': id, 'keys': {id: base64}, 'audit_key': base64}.") from err
        if active not in keys:
            raise ImproperlyConfigured(f"The active encryption key {active!r} is not among the keys.")
        for kid, key in keys.items():
            if len(key) != KEY_BYTES or not kid.isalnum() or kid != kid.lower():
                raise ImproperlyConfigured(f"Key {kid!r}: ids are lower-case a-z0-9, keys 32 bytes.")
        return cls(active=active, keys=keys, audit_key=audit_key, source=source)

    @classmethod
    def generate(cls, source: Path | None = None) -> Keyring:
        kid = new_key_id()
        return cls(active=kid, keys={kid: secrets.token_bytes(KEY_BYTES)},
                   audit_key=secrets.token_bytes(KEY_BYTES), source=source)


def new_key_id() -> str:
    return "k" + time.strftime("%Y%m%d%H%M%S", time.gmtime()) + secrets.token_hex(2)


_lock = threading.Lock()
_cached: Keyring | None = None
_cached_stamp: tuple[float, float] = (0.0, 0.0)  # (file mtime, when last checked)
_override: Keyring | None = None


def keyring() -> Keyring:
    """The current keyring. A changed keys file is picked up within a second (rotation)."""
    global _cached, _cached_stamp
    if _override is not None:
        return _override
    now = time.monotonic()
    if _cached is not None and (_cached.source is None or now - _cached_stamp[1] < 1.0):
        return _cached
    with _lock:
        env = os.environ.get("RAPPORT_ENCRYPTION_KEYS")
        if env:
            if _cached is None:
                _cached = Keyring.from_json(json.loads(env))
            return _cached
        path = keys_file()
        mtime = path.stat().st_mtime if path.exists() else 0.0
        if _cached is None or mtime != _cached_stamp[0]:
            _cached = _load_or_create(path)
            mtime = path.stat().st_mtime
        _cached_stamp = (mtime, now)
        return _cached


def keys_file() -> Path:
    return Path(getattr(settings, "RAPPORT_KEYS_FILE", None) or Path(settings.VAR_DIR) / "keys.json")


def save_keyring(ring: Keyring) -> None:
    """Write ``ring`` to its file atomically (temp file + rename), mode 600."""
    global _cached
    if ring.source is None:
        raise ImproperlyConfigured("Keys come from RAPPORT_ENCRYPTION_KEYS; change them there.")
    tmp = ring.source.with_suffix(f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(ring.to_json(), handle, indent=2)
    os.replace(tmp, ring.source)
    with _lock:
        _cached = ring if _override is None else _cached


def _load_or_create(path: Path) -> Keyring:
    if path.exists():
        return Keyring.from_json(json.loads(path.read_text()), source=path)
    ring = Keyring.generate(source=path)
    tmp = path.with_suffix(f".new{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(ring.to_json(), handle, indent=2)
    try:
        os.link(tmp, path)  # atomic and refuses to overwrite: another process may have won
    except FileExistsError:
        ring = Keyring.from_json(json.loads(path.read_text()), source=path)
    finally:
        tmp.unlink(missing_ok=True)
    return ring


class use_keyring:
    """Swap the keyring for a block (tests, and the rotation of a file other than the default)."""

    def __init__(self, ring: Keyring) -> None:
        self.ring = ring
        self.previous: Keyring | None = None

    def __enter__(self) -> Keyring:
        global _override
        self.previous, _override = _override, self.ring
        return self.ring

    def __exit__(self, *exc: object) -> None:
        global _override
        _override = self.previous


# ------------------------------------------------------------------------ seal and open


def encrypt_text(plaintext: str, context: str) -> str:
    ring = keyring()
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = AESGCM(ring.key(ring.active)).encrypt(nonce, plaintext.encode(), context.encode())
    return f"{ring.active}${_b64(nonce + sealed)}"


def decrypt_text(stored: str, context: str) -> str:
    key_id, sep, body = stored.partition("$")
    if not sep:
        raise DecryptionError("Not an encrypted value (no key id).")
    try:
        raw = _unb64(body)
        plain = AESGCM(keyring().key(key_id)).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode())
    except (InvalidTag, ValueError) as err:
        raise DecryptionError(f"Value under key {key_id!r} failed authentication.") from err
    return plain.decode()


def encrypt_bytes(data: bytes, context: str) -> tuple[str, bytes]:
    """Seal a file's bytes; returns (key id, nonce + ciphertext)."""
    ring = keyring()
    nonce = secrets.token_bytes(NONCE_BYTES)
    return ring.active, nonce + AESGCM(ring.key(ring.active)).encrypt(nonce, data, context.encode())


def decrypt_bytes(key_id: str, sealed: bytes, context: str) -> bytes:
    try:
        return AESGCM(keyring().key(key_id)).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:],
                                                     context.encode())
    except InvalidTag as err:
        raise DecryptionError("File failed authentication.") from err


def blind_index(context: str, value: Any, key_id: str | None = None) -> str:
    ring = keyring()
    kid = key_id or ring.active
    digest = hmac.new(ring.index_key(kid), f"{context}\x00{_canonical(value)}".encode(),
                      hashlib.sha256).hexdigest()
    return f"{kid}:{digest[:40]}"


def _canonical(value: Any) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    return " ".join(str(value).split()).casefold()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ------------------------------------------------------------------------------- fields


class EncryptedWith(Lookup):
    """``field__encrypted_with="k1"``: rows whose ciphertext is under key k1 (used by rotation)."""

    lookup_name = "encrypted_with"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, params = self.process_lhs(compiler, connection)
        return f"{lhs} LIKE %s", [*params, f"{self.rhs}$%"]


class EncryptedMixin:
    """Stores the value sealed; only ``isnull`` (and ``encrypted_with``) lookups make sense."""

    encrypted = True
    context = ""

    def contribute_to_class(self, cls: Any, name: str, *args: Any, **kwargs: Any) -> None:
        super().contribute_to_class(cls, name, *args, **kwargs)  # type: ignore[misc]
        self.context = f"{cls._meta.label}.{name}"

    def get_internal_type(self) -> str:
        return "TextField"

    def db_type(self, connection: Any) -> str:
        return models.TextField().db_type(connection)

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name == "isnull":
            return super().get_lookup(lookup_name)  # type: ignore[misc]
        if lookup_name == "encrypted_with":
            return EncryptedWith
        return None

    def serialise(self, value: Any) -> str:
        return str(value)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None:
            return None
        return self.to_python(decrypt_text(value, self.context))  # type: ignore[attr-defined]

    def get_prep_value(self, value: Any) -> Any:
        value = self.to_python(value)  # type: ignore[attr-defined]
        if value is None or value == "":
            return None
        return encrypt_text(self.serialise(value), self.context)

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        return value if prepared else self.get_prep_value(value)


class EncryptedTextField(EncryptedMixin, models.TextField):
    pass


class EncryptedCharField(EncryptedMixin, models.CharField):
    """Validated like a CharField (max_length, choices), stored as sealed text."""


class EncryptedDateField(EncryptedMixin, models.DateField):
    def serialise(self, value: Any) -> str:
        return value.isoformat()

    def pre_save(self, model_instance: Any, add: bool) -> Any:
        return getattr(model_instance, self.attname)


class BlindIndexField(models.CharField):
    """A keyed hash of ``source`` for exact lookups, recomputed on every save."""

    def __init__(self, *args: Any, source: str = "", **kwargs: Any) -> None:
        self.source = source
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("null", True)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("editable", False)
        kwargs.setdefault("db_index", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs["source"] = self.source
        return name, path, args, kwargs

    def compute(self, instance: Any) -> str | None:
        value = getattr(instance, self.source)
        if value is None or value == "":
            return None
        return blind_index(instance._meta.get_field(self.source).context, value)

    def pre_save(self, model_instance: Any, add: bool) -> Any:
        value = self.compute(model_instance)
        setattr(model_instance, self.attname, value)
        return value


def blind_q(model: type[models.Model], field_name: str, value: Any) -> Q:
    """Exact match on an encrypted field through its blind index, under every known key."""
    index = _index_field_for(model, field_name)
    context = model._meta.get_field(field_name).context  # type: ignore[union-attr]
    source_field = model._meta.get_field(field_name)
    value = source_field.to_python(value)
    if value is None or value == "":
        return Q(**{f"{field_name}__isnull": True})
    candidates = [blind_index(context, value, kid) for kid in keyring().keys]
    return Q(**{f"{index.name}__in": candidates})


def _index_field_for(model: type[models.Model], field_name: str) -> BlindIndexField:
    for candidate in model._meta.concrete_fields:
        if isinstance(candidate, BlindIndexField) and candidate.source == field_name:
            return candidate
    raise ImproperlyConfigured(f"{model._meta.label}.{field_name} has no blind index.")


def encrypted_models() -> Iterator[tuple[type[models.Model], list[models.Field], list[BlindIndexField]]]:
    """Every installed model with encrypted fields, with those fields and their blind indexes."""
    from django.apps import apps

    for model in apps.get_models():
        sealed = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedMixin)]
        if sealed:
            indexes = [f for f in model._meta.concrete_fields if isinstance(f, BlindIndexField)]
            yield model, sealed, indexes


# ----------------------------------------------------------------------------- rotation

# Extra re-encryption steps for data that is not in a column (attachment files): each is
# ``fn(active_key_id, batch_size) -> rows re-encrypted``, called until it returns 0.
ROTATION_STEPS: list[Callable[[str, int], int]] = []


@dataclass
class RotationReport:
    new_key: str | None
    resumed: bool
    rows: dict[str, int] = field(default_factory=dict)


def pending_rotation_rows() -> dict[str, int]:
    """How many rows per model are not yet under the active key (0 everywhere when done)."""
    active = keyring().active
    return {model._meta.label: model._base_manager.filter(_stale_q(sealed, indexes, active)).count()
            for model, sealed, indexes in encrypted_models()}


def rotate_keys(*, batch_size: int = 500, new_key: bool = True,
                progress: Callable[[str, int], None] | None = None) -> RotationReport:
    """Make a new key active (unless a rotation is unfinished) and re-encrypt every row.

    Resumable: rows are re-encrypted in committed batches, and a rerun first finishes the
    rows still under an older key instead of adding yet another key.
    """
    pending = sum(pending_rotation_rows().values())
    resumed = pending > 0
    created = None
    if new_key and not resumed:
        ring = keyring()
        created = new_key_id()
        ring.keys[created] = secrets.token_bytes(KEY_BYTES)
        ring.active = created
        save_keyring(ring)
    report = RotationReport(new_key=created, resumed=resumed)
    active = keyring().active
    for model, sealed, indexes in encrypted_models():
        done = 0
        while True:
            count = _rotate_batch(model, sealed, indexes, active, batch_size)
            if not count:
                break
            done += count
            if progress:
                progress(model._meta.label, done)
        report.rows[model._meta.label] = done
    for step in ROTATION_STEPS:
        done = 0
        while (count := step(active, batch_size)) > 0:
            done += count
        report.rows[getattr(step, "label", step.__name__)] = done
    return report


def _stale_q(sealed: list[models.Field], indexes: list[BlindIndexField], active: str) -> Q:
    q = Q()
    for f in sealed:
        q |= Q(**{f"{f.name}__isnull": False}) & ~Q(**{f"{f.name}__encrypted_with": active})
    for f in indexes:
        q |= Q(**{f"{f.name}__isnull": False}) & ~Q(**{f"{f.name}__startswith": f"{active}:"})
    return q


def _rotate_batch(model: type[models.Model], sealed: list[models.Field], indexes: list[BlindIndexField],
                  active: str, batch_size: int) -> int:
    with transaction.atomic():
        rows = list(model._base_manager.select_for_update().filter(_stale_q(sealed, indexes, active))
                    .order_by("pk")[:batch_size])
        if not rows:
            return 0
        for row in rows:
            for index in indexes:
                setattr(row, index.attname, index.compute(row))
        # bulk_update re-seals each value under the active key (get_prep_value) and leaves
        # auto_now timestamps and versions alone: rotation is not a change of the record.
        model._base_manager.bulk_update(rows, [f.name for f in (*sealed, *indexes)])
        return len(rows)
