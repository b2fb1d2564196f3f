"""Id validation and generation.

Ids end up inside Redis key names, so they are restricted to a safe set:
no braces (the tenant hash tag is the only one), no colons (the key separator),
no whitespace.
"""

from __future__ import annotations

import os
import re

from .errors import ValidationError

ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}"
_ID_RE = re.compile(ID_PATTERN + r"\Z")


def validate_id(value: object, what: str) -> str:
    """Return `value` if it is a safe id, else raise ValidationError naming `what`."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise ValidationError(
            f"{what}: must be 1-64 characters of A-Z a-z 0-9 _ . - starting with a letter "
            f"or digit, got {value!r}",
            field=what,
        )
    return value


def is_valid_id(value: object) -> bool:
    return isinstance(value, str) and _ID_RE.match(value) is not None


def new_contact_id(now_ms: int) -> str:
    """Time-ordered, collision-resistant id: 12 hex digits of ms + 16 random hex digits."""
    return f"c{now_ms:012x}{os.urandom(8).hex()}"
