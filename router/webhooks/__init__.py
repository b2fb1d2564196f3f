"""Outbound webhooks: the tenant's events, POSTed to subscribed URLs, signed.

The pipeline (docs/webhooks.md):
- `consumer.py` reads the tenant stream in the `webhooks` consumer group and,
  in one script per batch, acknowledges the entries and enqueues one delivery
  per matching subscription (`webhook_enqueue.lua`);
- `sender.py` leases due deliveries (`webhook_take.lua`), POSTs them with one
  aiohttp session, bounded concurrency per subscription and overall, and
  records the outcome (`webhook_result.lua`): done, retry later, or dead letter;
- `store.py` holds the Redis side: subscriptions made through the admin API,
  deliveries and dead letters; `signing.py` the payload, signature and backoff.

Nothing here runs inside the engine's scripts or on the routing path: a slow
receiver delays only its own subscription's deliveries.
"""

from .consumer import WebhookConsumer
from .runner import WebhookRunner
from .sender import WebhookSender
from .signing import payload, retry_delay_s, sign, verify
from .store import Subscription, WebhookStore

__all__ = [
    "Subscription",
    "WebhookConsumer",
    "WebhookRunner",
    "WebhookSender",
    "WebhookStore",
    "payload",
    "retry_delay_s",
    "sign",
    "verify",
]
