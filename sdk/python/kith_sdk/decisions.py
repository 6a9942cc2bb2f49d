"""Constructors for decisions, deliveries and receipts, so plugin code reads as what it decides.

Each returns the generated binding type the export hands back to the kernel.
Arguments are checked here, where a mistake is made, rather than when the
kernel refuses the call: a wrong type raises ``TypeError``, a value the kernel
never accepts (no points, an empty tag, an event type outside ``plugin.``)
``ValueError``. The kernel's own checks (lengths, capabilities) still apply.
"""

import json
import math

from . import _bindings
from .errors import Invalid

MAX_POINTS = 1_000_000_000
"""Points in one decision, at most."""


def _int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    return value


def _opt_int(name: str, value) -> int | None:
    return None if value is None else _int(name, value)


def _str(name: str, value) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    return value


def _opt_str(name: str, value) -> str | None:
    return None if value is None else _str(name, value)


def _named(name: str, value) -> str:
    if not _str(name, value).strip():
        raise ValueError(f"{name} must not be empty")
    return value


def _points(value) -> int:
    if not 1 <= _int("points", value) <= MAX_POINTS:
        raise ValueError(f"points must be between 1 and {MAX_POINTS}, not {value}")
    return value


def add_tag(customer_id: int, tag: str, reason: str):
    """Add a tag (its source is the plugin). Capability `tags:write`."""
    t = _bindings.types()
    return t.Decision_AddTag(t.TagChange(_int("customer_id", customer_id), _named("tag", tag), _str("reason", reason)))


def remove_tag(customer_id: int, tag: str, reason: str):
    """Remove a tag this plugin set. Capability `tags:write`."""
    t = _bindings.types()
    return t.Decision_RemoveTag(t.TagChange(_int("customer_id", customer_id), _named("tag", tag), _str("reason", reason)))


def set_score(customer_id: int, model: str, value: float, label: str | None = None, explanation: str = ""):
    """Set a score under `model`: the plugin id, or `<plugin id>.<facet>`. Capability `scores:write`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"value must be a float, not {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"value must be a finite number, not {value}")
    t = _bindings.types()
    return t.Decision_SetScore(t.ScoreChange(
        _int("customer_id", customer_id), _named("model", model), value, _opt_str("label", label), _str("explanation", explanation)))


def award_points(customer_id: int, points: int, source_key: str, reason: str, expires_at: int | None = None):
    """Award points once per `source_key`; `expires_at` in milliseconds since the epoch. Capability `points:write`."""
    t = _bindings.types()
    return t.Decision_AwardPoints(t.PointsChange(
        _int("customer_id", customer_id), _points(points), _named("source_key", source_key), _str("reason", reason),
        _opt_int("expires_at", expires_at)))


def claw_back_points(customer_id: int, points: int, source_key: str, reason: str):
    """Claw back points once per `source_key`. Capability `points:write`."""
    t = _bindings.types()
    return t.Decision_ClawBackPoints(t.PointsChange(
        _int("customer_id", customer_id), _points(points), _named("source_key", source_key), _str("reason", reason), None))


def change_tier(customer_id: int, tier: str, reason: str):
    """Move a customer to a tier. Capability `tiers:write`."""
    t = _bindings.types()
    return t.Decision_ChangeTier(t.TierChange(_int("customer_id", customer_id), _named("tier", tier), _str("reason", reason)))


def emit_event(customer_id: int | None, event_type: str, payload: dict | str):
    """Emit a `plugin.*` event whose payload is a JSON object (a dict, or its JSON text). Capability `events:emit`."""
    if not _str("event_type", event_type).startswith("plugin.") or len(event_type) <= len("plugin."):
        raise ValueError(f"event_type must start with `plugin.`, not {event_type!r}")
    if isinstance(payload, str):
        try:
            parsed = json.loads(payload)
        except ValueError as e:
            raise ValueError(f"payload is not JSON: {e}") from None
        if not isinstance(parsed, dict):
            raise ValueError("payload must be a JSON object")
        text = payload
    elif isinstance(payload, dict):
        text = to_json(payload)
    else:
        raise TypeError(f"payload must be a dict or its JSON text, not {type(payload).__name__}")
    t = _bindings.types()
    return t.Decision_EmitEvent(t.EmittedEvent(_opt_int("customer_id", customer_id), event_type, text))


def accepted(provider_id: str | None = None):
    """The provider took the message; `provider_id` is its own id for it, when it gives one."""
    return _bindings.types().Delivery_Accepted(_opt_str("provider_id", provider_id))


def rejected(reason: str):
    """The provider refused the message for good."""
    return _bindings.types().Delivery_Rejected(_str("reason", reason))


def retry_after(seconds: int):
    """Try the message again after this many seconds."""
    if not 0 <= _int("seconds", seconds) <= 0xFFFF_FFFF:
        raise ValueError(f"seconds must be between 0 and {0xFFFF_FFFF}, not {seconds}")
    return _bindings.types().Delivery_RetryAfter(seconds)


RECEIPT_STATUSES = ("delivered", "failed", "pending")
"""The statuses a receipt may have."""


def receipt(status: str, message_id: str | None = None, provider_id: str | None = None, detail: str | None = None,
            at: int | None = None):
    """A delivery receipt: `status` is ``"delivered"``, ``"failed"`` or ``"pending"``; `at` in milliseconds."""
    t = _bindings.types()
    if not isinstance(status, t.ReceiptStatus):
        if _str("status", status) not in RECEIPT_STATUSES:
            raise ValueError(f"status must be one of {', '.join(RECEIPT_STATUSES)}, not {status!r}")
        status = t.ReceiptStatus[status.upper()]
    return t.Receipt(_opt_str("message_id", message_id), _opt_str("provider_id", provider_id), status,
                     _opt_str("detail", detail), _opt_int("at", at))


def to_json(value) -> str:
    """Compact JSON text, as the Rust SDK writes it (no spaces, non-ASCII kept)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def json_body(request):
    """The body of an inbound request (a receipt a provider posted) parsed as JSON; ``Invalid`` if it is not."""
    try:
        return json.loads(bytes(request.body).decode("utf-8"))
    except UnicodeDecodeError:
        raise Invalid("the body is not UTF-8") from None
    except ValueError as e:
        raise Invalid(f"the body is not JSON: {e}") from None
