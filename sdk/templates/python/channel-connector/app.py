"""{{id}}: a channel connector that posts each message as JSON to the configured
URL, and reads the delivery receipts the provider posts back."""

import wit_world

import kith_sdk
from kith_sdk import http, types

DEFAULT_RETRY_SECONDS = 30


class WitWorld(wit_world.WitWorld):
    @kith_sdk.export
    def deliver(self, context: types.ShopContext, message: types.Message) -> types.Delivery:
        url = kith_sdk.config().get("url")
        if not isinstance(url, str):
            raise kith_sdk.invalid("configuration: `url` is required")
        body = {
            "id": message.id,
            "to": message.recipient,
            "template": message.template,
            "variables": dict(message.variables),
        }
        response = http.request("POST", url, {"content-type": "application/json"}, kith_sdk.to_json(body))
        if 200 <= response.status < 300:
            return kith_sdk.accepted(provider_id(response) or message.id)
        if response.status in (429, 503):
            return kith_sdk.retry_after(retry_seconds(response.header("retry-after")))
        return kith_sdk.rejected(f"provider answered {response.status}")

    @kith_sdk.export
    def parse_receipt(self, context: types.ShopContext, request: types.InboundRequest) -> list[types.Receipt]:
        data = kith_sdk.json_body(request)
        items = data if isinstance(data, list) else [data]
        return [receipt(item, index) for index, item in enumerate(items)]


def provider_id(response: http.Response) -> str | None:
    """The string field `id` of the provider's JSON answer, if it has one."""
    try:
        answer = response.json()
    except kith_sdk.Invalid:
        return None
    value = answer.get("id") if isinstance(answer, dict) else None
    return value if isinstance(value, str) else None


def retry_seconds(header: str | None) -> int:
    """The seconds of a `retry-after` header, when it is a number of seconds."""
    if header is not None and header.isascii() and header.isdigit() and int(header) <= 0xFFFF_FFFF:
        return int(header)
    return DEFAULT_RETRY_SECONDS


def receipt(item, index: int) -> types.Receipt:
    """One receipt: `{"message_id": str, "status": "delivered"|"failed"|"pending", "detail"?: str}`."""
    if not isinstance(item, dict):
        raise kith_sdk.invalid(f"receipt {index}: expected a JSON object")
    message_id, status, detail = item.get("message_id"), item.get("status"), item.get("detail")
    if not isinstance(message_id, str):
        raise kith_sdk.invalid(f"receipt {index}: `message_id` must be a string")
    if status not in kith_sdk.RECEIPT_STATUSES:
        raise kith_sdk.invalid(f"receipt {index}: `status` must be one of {', '.join(kith_sdk.RECEIPT_STATUSES)}")
    if detail is not None and not isinstance(detail, str):
        raise kith_sdk.invalid(f"receipt {index}: `detail` must be a string")
    return kith_sdk.receipt(status, message_id=message_id, detail=detail)
