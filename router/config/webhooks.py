"""Loading `[webhooks]`: outbound webhook subscriptions and delivery settings.

Kept apart from `loader.py`; it uses the same `_Loader` primitives, so every
error still reads `<file>: <key path>: <problem>`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .model import WebhooksConfig

if TYPE_CHECKING:
    from .loader import _Loader


def webhooks(ld: _Loader, value: object, path: str) -> WebhooksConfig:
    t = ld.table(value, path)
    ld.keys(t, path, ())
    return WebhooksConfig()
