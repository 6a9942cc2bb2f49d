"""wecom-robot: posts each message to a WeChat Work (企业微信) group through a group robot
(群机器人). See README.md.

A send is `POST <endpoint>?key=<key>` with `{"msgtype": "text", "text": {"content",
"mentioned_mobile_list"?}}` or `{"msgtype": "markdown", "markdown": {"content"}}`. WeCom answers
HTTP 200 with `{"errcode", "errmsg"}`. The robot is not signed: the key in the URL is the
credential, so the URL is never logged.
"""

import re
import urllib.parse

import wit_world

import kith_sdk
from kith_sdk import http, log, types

DEFAULTS = {
    "endpoint": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send",
    "msgtype": "text",
    "mentioned_mobile_list": [],
}

# Seconds to wait when WeCom is busy and does not say (as plugins/connector-kit).
DEFAULT_RETRY_AFTER = 30
# errcode 45009 (api freq out of limit): past 20 messages a minute to this robot.
RATE_LIMITED = 45009
# Seconds to wait after the rate limit: its window is a minute.
RATE_LIMIT_RETRY_AFTER = 60
# errcode -1: WeCom's global "system busy, try again later" (系统繁忙).
BUSY = -1

# WeCom's caps on `content`, in UTF-8 bytes: text 2048, markdown 4096.
MAX_BYTES = {"text": 2048, "markdown": 4096}
ELLIPSIS = "…"

PLACEHOLDER = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
INTEGER = re.compile(r"-?[0-9]+")


class WitWorld(wit_world.WitWorld):
    @kith_sdk.export
    def deliver(self, context: types.ShopContext, message: types.Message) -> types.Delivery:
        settings = kith_sdk.config(DEFAULTS)
        msgtype = settings["msgtype"]
        text = render(message.template, dict(message.variables))
        content = cut(text, MAX_BYTES.get(msgtype, MAX_BYTES["text"]))
        if content != text:
            log.info(f"message {message.id}: content of {utf8_len(text)} bytes cut to {utf8_len(content)} bytes "
                     f"(WeCom takes {MAX_BYTES.get(msgtype, MAX_BYTES['text'])} in a {msgtype} message)")
        payload = body(settings, content)
        response = http.request("POST", send_url(settings), {"content-type": "application/json"}, kith_sdk.to_json(payload))
        delivery = verdict(response)
        if isinstance(delivery, types.Delivery_Accepted):
            log.info(f"message {message.id} (customer {message.customer_id}) posted to the group as {payload['msgtype']}")
        return delivery

    @kith_sdk.export
    def parse_receipt(self, context: types.ShopContext, request: types.InboundRequest) -> list[types.Receipt]:
        raise kith_sdk.invalid("wecom group robots send no delivery receipts")


def render(template: str, variables: dict) -> str:
    """The template with `{{name}}` replaced by the variable `name`; unknown placeholders stay as they are."""
    return PLACEHOLDER.sub(lambda m: variables.get(m.group(1), m.group(0)), template)


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def cut(text: str, limit: int) -> str:
    """`text` if it fits in `limit` UTF-8 bytes, else its longest start (at a character boundary)
    that fits with "…" after it."""
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    room = limit - utf8_len(ELLIPSIS)
    # Dropping the bytes of a character cut in the middle leaves whole characters only.
    return encoded[:room].decode("utf-8", errors="ignore") + ELLIPSIS


def send_url(settings: dict) -> str:
    """`<endpoint>?key=<key>` (`&key=` when the endpoint has a query already)."""
    endpoint, key = settings.get("endpoint"), settings.get("key")
    if not isinstance(key, str) or not key:
        raise kith_sdk.invalid("configuration: `key` (the robot's webhook key) is required")
    if not isinstance(endpoint, str):
        raise kith_sdk.invalid("configuration: `endpoint` must be a URL")
    # Checked before the key is added: kith_sdk.http's errors name the URL, which must not show the key.
    http.split_url(endpoint)
    return f"{endpoint}{'&' if '?' in endpoint else '?'}key={urllib.parse.quote(key, safe='')}"


def body(settings: dict, content: str) -> dict:
    """The JSON body: markdown, or text @-mentioning the configured phones (text messages only)."""
    if settings["msgtype"] == "markdown":
        return {"msgtype": "markdown", "markdown": {"content": content}}
    text = {"content": content}
    mobiles = settings.get("mentioned_mobile_list") or []
    if mobiles:
        text["mentioned_mobile_list"] = list(mobiles)
    return {"msgtype": "text", "text": text}


def snippet(response: http.Response) -> str:
    return response.text()[:200]


def retry_seconds(header: str | None) -> int:
    """The seconds of a `Retry-After` header, when it is a number of seconds, else the default."""
    value = (header or "").strip()
    if value.isascii() and value.isdigit() and int(value) <= 0xFFFF_FFFF:
        return int(value)
    return DEFAULT_RETRY_AFTER


def errcode_of(answer) -> int | None:
    """The integer `errcode` of WeCom's JSON answer (a number, or a string of digits), if it has one."""
    code = answer.get("errcode") if isinstance(answer, dict) else None
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, float) and code.is_integer():
        return int(code)
    if isinstance(code, str) and INTEGER.fullmatch(code.strip()):
        return int(code.strip())
    return None


def verdict(response: http.Response) -> types.Delivery:
    """WeCom's answer as a delivery."""
    status = response.status
    if status in (408, 429) or 500 <= status <= 599:
        return kith_sdk.retry_after(retry_seconds(response.header("retry-after")))
    if not 200 <= status <= 299:
        return kith_sdk.rejected(f"provider answered {status}: {snippet(response)}")
    try:
        answer = response.json()
    except kith_sdk.Invalid:
        answer = None  # Not JSON: told below.
    errcode = errcode_of(answer)
    if errcode is None:
        return kith_sdk.rejected(f"wecom answered {status} without an errcode: {snippet(response)}")
    if errcode == 0:
        return kith_sdk.accepted(None)
    errmsg = answer.get("errmsg")
    reason = f"wecom errcode {errcode}: {errmsg if isinstance(errmsg, str) else ''}"
    log.warn(reason)
    if errcode == RATE_LIMITED:
        return kith_sdk.retry_after(RATE_LIMIT_RETRY_AFTER)
    if errcode == BUSY:
        return kith_sdk.retry_after(DEFAULT_RETRY_AFTER)
    return kith_sdk.rejected(reason)
