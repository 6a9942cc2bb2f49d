"""Outbound HTTP for channel connectors, over `wasi:http/outgoing-handler@0.2.12`.

Only a channel connector's world imports `wasi:http`: import this module
(``from kith_sdk import http``) in a connector only. The kernel lets a request
through only to a host the manifest declares (`allowed-hosts`) and the shop
granted; any other raises ``kith_sdk.AccessDenied``. A request waits for its
answer (a blocking call, counted against the call's deadline); the kernel
gives it 10 s at most and reads at most 1 MiB of the response.

    response = http.request("POST", url, {"content-type": "application/json"}, kith_sdk.to_json(body))
    if response.ok:
        provider_id = response.json().get("id")
"""

import json
from dataclasses import dataclass, field

from . import _bindings
from .errors import AccessDenied, Failed, Invalid

# Imported now, at build time: a component cannot import a module while a call runs.
_bindings.preload(_bindings.HTTP)

_CHUNK = 4096  # what `blocking-write-and-flush` takes at most at once
_READ = 64 * 1024

_METHODS = {"GET": "Method_Get", "HEAD": "Method_Head", "POST": "Method_Post", "PUT": "Method_Put",
            "DELETE": "Method_Delete", "CONNECT": "Method_Connect", "OPTIONS": "Method_Options",
            "TRACE": "Method_Trace", "PATCH": "Method_Patch"}


@dataclass
class Response:
    """A response, read whole."""

    status: int
    """The HTTP status code."""
    headers: list[tuple[str, str]] = field(default_factory=list)
    """Header names (lower-case) and values, in the order received."""
    body: bytes = b""
    """The body."""

    @property
    def ok(self) -> bool:
        """A 2xx status."""
        return 200 <= self.status < 300

    def header(self, name: str) -> str | None:
        """The first value of a header, by its name (any case)."""
        name = name.lower()
        return next((v for n, v in self.headers if n.lower() == name), None)

    def text(self) -> str:
        """The body as UTF-8 text (undecodable bytes replaced)."""
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        """The body parsed as JSON; ``kith_sdk.Invalid`` when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise Invalid(f"the response is not JSON: {e}") from None


def split_url(url: str) -> tuple[str, str, str]:
    """(scheme, authority, path with query) of an absolute http or https URL."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise Invalid(f"`{url}` is not an absolute URL")
    if scheme not in ("http", "https"):
        raise Invalid(f"unsupported scheme `{scheme}`")
    at = rest.find("/")
    authority, path = (rest, "/") if at < 0 else (rest[:at], rest[at:])
    if not authority:
        raise Invalid(f"`{url}` has no host")
    return scheme, authority, path


def header_list(headers) -> list[tuple[str, bytes]]:
    """Headers (a mapping or (name, value) pairs) as wasi:http wants them: lower-case names, byte values."""
    pairs = headers.items() if hasattr(headers, "items") else (headers or [])
    out = []
    for name, value in pairs:
        out.append((str(name).lower(), value if isinstance(value, bytes) else str(value).encode()))
    return out


def request(method: str, url: str, headers=None, body: bytes | str | None = None) -> Response:
    """Send a request and wait for the whole response.

    `headers` is a mapping or a list of (name, value) pairs; `body` bytes, or a str sent as UTF-8.
    """
    scheme, authority, path = split_url(url)
    fields_list = header_list(headers)
    if isinstance(body, str):
        body = body.encode()
    body = bytes(body or b"")
    if not any(name == "content-length" for name, _ in fields_list):
        # A length rather than a chunked body: some providers refuse chunked requests.
        fields_list.append(("content-length", str(len(body)).encode()))
    try:
        handler = _bindings.host("outgoing_handler")
        types = _bindings.host("wasi_http_types")
    except ImportError:
        raise Failed("this plugin's world does not import wasi:http: only channel connectors make HTTP requests") from None
    Err = _bindings.err()

    method = method.upper()
    wit_method = getattr(types, _METHODS[method])() if method in _METHODS else types.Method_Other(method)
    wit_scheme = types.Scheme_Http() if scheme == "http" else types.Scheme_Https()
    try:
        fields = types.Fields.from_list(fields_list)
    except Err as e:
        raise Invalid(f"headers: {e.value}") from None
    outgoing_request = types.OutgoingRequest(fields)
    for setter, value, what in ((outgoing_request.set_method, wit_method, "method"),
                                (outgoing_request.set_scheme, wit_scheme, "scheme"),
                                (outgoing_request.set_authority, authority, "authority"),
                                (outgoing_request.set_path_with_query, path, "path")):
        try:
            setter(value)
        except Err:
            # A query may carry a credential (a webhook key): never show it in an error.
            shown = value.split("?", 1)[0] + "?…" if what == "path" and "?" in value else value
            raise Invalid(f"invalid {what}: {shown!r}") from None
    try:
        outgoing_body = outgoing_request.body()
    except Err:
        raise Failed("the request body was already taken") from None
    try:
        future = handler.handle(outgoing_request, None)
    except Err as e:
        raise _failure(types, e.value) from None
    with future:
        # When the request fails (a denied host, a refused connection) the body
        # stream closes; the response future then holds the reason.
        written = _write_body(types, Err, outgoing_body, body)
        with future.subscribe() as ready:
            ready.block()
        answer = future.get()
    if answer is None:
        raise Failed("no response")
    if isinstance(answer, Err):
        raise Failed("the response was already taken")
    answer = answer.value  # the inner result: the response, or why there is none
    if isinstance(answer, Err):
        raise _failure(types, answer.value)
    if written is not None:
        raise written
    with answer.value as response:
        status = response.status()
        with response.headers() as received:
            headers_out = [(name, value.decode("utf-8", errors="replace")) for name, value in received.entries()]
        try:
            incoming = response.consume()
        except Err:
            raise Failed("the response body was already taken") from None
        with incoming:
            try:
                stream = incoming.stream()
            except Err:
                raise Failed("the response body stream was already taken") from None
            chunks = []
            with stream:
                while True:
                    try:
                        chunks.append(stream.blocking_read(_READ))
                    except Err as e:
                        if type(e.value).__name__ == "StreamError_Closed":
                            break
                        raise Failed(f"reading the response: {_describe(e.value)}") from None
    return Response(status, headers_out, b"".join(chunks))


def _write_body(types, Err, outgoing_body, body: bytes) -> Exception | None:
    """Write and finish the request body; the error, if any, to raise once the response is known."""
    try:
        stream = outgoing_body.write()
    except Err:
        return Failed("the request body stream was already taken")
    with stream:
        for at in range(0, len(body), _CHUNK):
            try:
                stream.blocking_write_and_flush(body[at:at + _CHUNK])
            except Err as e:
                return Failed(f"writing the request body: {_describe(e.value)}")
    try:
        types.OutgoingBody.finish(outgoing_body, None)
    except Err as e:
        return _failure(types, e.value)
    return None


def _describe(stream_error) -> str:
    inner = getattr(stream_error, "value", None)
    if inner is not None and hasattr(inner, "to_debug_string"):
        return inner.to_debug_string()
    return type(stream_error).__name__.removeprefix("StreamError_")


def _failure(types, code) -> Exception:
    if isinstance(code, types.ErrorCode_HttpRequestDenied):
        return AccessDenied("the kernel denied the request: host not granted")
    return Failed(f"HTTP request failed: {type(code).__name__.removeprefix('ErrorCode_')}"
                  + (f" {code.value}" if getattr(code, "value", None) is not None else ""))
