"""The host's reads: configuration, clock, customers, the shop, buyer summaries.

Each is behind a capability the manifest requests and the shop grants;
without it the call raises ``kith_sdk.AccessDenied``.
"""

import json

from . import _bindings
from .errors import Invalid, call

MAX_PAGE = 1000
"""Buyers on one page of ``buyers``, at most."""


def config_text() -> str:
    """The shop's configuration of this plugin as JSON text (capability `config`)."""
    return call(_bindings.host("config").get)


def config(defaults: dict | None = None) -> dict:
    """The shop's configuration of this plugin, a dict, over `defaults` (capability `config`).

    The kernel has checked it against the manifest's ``[config-schema]``; keys the
    shop left out take their value from `defaults`::

        min_spent = kith_sdk.config({"min_spent": 100_000})["min_spent"]

    ``kith_sdk.Invalid`` when it is not a JSON object.
    """
    return parse_config(config_text(), defaults)


def parse_config(text: str, defaults: dict | None = None) -> dict:
    """``config``'s parsing: JSON object text over `defaults` (empty text and ``null`` are ``{}``)."""
    try:
        value = json.loads(text) if text.strip() else None
    except ValueError as e:
        raise Invalid(f"configuration: {e}") from None
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise Invalid(f"configuration: expected a JSON object, got {type(value).__name__}")
    return {**(defaults or {}), **value}


def now() -> int:
    """The kernel's clock in milliseconds since the Unix epoch (capability `clock`).

    Prefer this, or ``context.now``, to the system clock: the kernel's tests move this clock.
    """
    return call(_bindings.host("clock").now)


def read_customer(customer_id: int):
    """Any customer of the calling shop (capability `customers:read`); ``NotFound`` for ids of other shops."""
    return call(_bindings.host("customers").read, customer_id)


def histories(ids, since: int) -> list:
    """Orders (with items) and behaviours since `since` (milliseconds), newest first, of up to
    1,000 customers of the calling shop, in the order asked (capability `customers:read`).
    Ids of other shops are left out. Ask for each customer once: a batch may hold several
    events of one customer."""
    return call(_bindings.host("customers").histories, list(ids), since)


def shop_context(window_days: int | None = None):
    """The shop's context with its distributions over the last `window_days` days
    (``None``: all time), e.g. for RFM over a configurable window (capability `customers:read`)."""
    return call(_bindings.host("shop").context, window_days)


def buyers(after: int | None = None, limit: int = MAX_PAGE) -> list:
    """Up to `limit` (1 to 1,000) buyers with an id above `after`, by id (capability `customers:read`).

    Ask for the next page with the last id of this one; a short page is the last.
    For BG/NBD and Gamma-Gamma: x = ``purchase_days - 1``, tₓ = ``span_days``,
    T = ``age_days``, the average repeat purchase ``repeat_spent / x`` when x > 0.
    """
    return call(_bindings.host("summaries").buyers, after, limit)


def all_buyers(page: int = MAX_PAGE):
    """Every buyer of the shop, by id, read `page` (clamped to 1..1,000) at a time."""
    page = min(max(page, 1), MAX_PAGE)
    after = None
    while True:
        batch = buyers(after, page)
        yield from batch
        if len(batch) < page:
            return
        after = batch[-1].customer_id
