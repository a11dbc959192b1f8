"""Search keys: folded forms of names and identifiers that B-tree indexes can prefix-match.

A prefix match is written as a range (``key >= "smi" AND key < "smj"``) rather than LIKE, so
that the same plain index serves it on SQLite and on PostgreSQL whatever the column collation.
Keys hold only ``[a-z0-9]`` so the range is exact under any collation.
"""

from __future__ import annotations

import re
import unicodedata

from django.db.models import Q

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def fold(text: str) -> str:
    """Lower-case, strip accents and drop everything but letters and digits."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    ascii_text = decomposed.encode("ascii", "ignore").decode("ascii").lower()
    return _NON_ALNUM.sub("", ascii_text)


def fold_tokens(text: str) -> list[str]:
    """Fold each whitespace/punctuation-separated word of ``text``; empty words dropped."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    ascii_text = decomposed.encode("ascii", "ignore").decode("ascii").lower()
    return [t for t in _NON_ALNUM.split(ascii_text) if t]


def _successor(prefix: str) -> str | None:
    """The smallest alphanumeric key greater than every key starting with ``prefix``."""
    chars = list(prefix)
    while chars:
        last = chars.pop()
        if last == "z":
            continue  # nothing follows z: carry into the previous character
        # Digits sort before letters in every collation we run on, so 9 is followed by a.
        return "".join(chars) + ("a" if last == "9" else chr(ord(last) + 1))
    return None


def prefix_q(field: str, prefix: str) -> Q:
    """Q matching rows whose ``field`` starts with the folded ``prefix``, index-friendly."""
    q = Q(**{f"{field}__gte": prefix})
    upper = _successor(prefix)
    if upper is not None:
        q &= Q(**{f"{field}__lt": upper})
    return q
