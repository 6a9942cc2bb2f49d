"""Errors that make an export fail with the WIT `error` variant, and the host's errors as exceptions."""

from . import _bindings


class KithError(Exception):
    """A failure the kernel is told about: an export that raises one fails with its `kind`.

    Raise a subclass (``raise kith_sdk.Invalid("...")``, or ``raise kith_sdk.invalid("...")``).
    The host functions of the SDK raise them too, so ``except kith_sdk.NotFound:`` works
    around ``kith_sdk.read_customer``. A plain ``KithError`` counts as `failed`.
    """

    kind = "failed"

    def __init__(self, message: str = ""):
        super().__init__(message)
        self.message = str(message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def to_wit(self):
        """The generated `error` variant case with this message."""
        return getattr(_bindings.types(), _CASES[self.kind])(self.message)


class AccessDenied(KithError):
    """The shop did not grant the capability a call needs (`access-denied`)."""

    kind = "access-denied"


class NotFound(KithError):
    """The thing asked for does not exist in this shop (`not-found`)."""

    kind = "not-found"


class QuotaExceeded(KithError):
    """A quota of this shop and plugin is used up (`quota-exceeded`)."""

    kind = "quota-exceeded"


class Invalid(KithError):
    """An argument or input was refused (`invalid`)."""

    kind = "invalid"


class Failed(KithError):
    """The plugin could not do its work; the kernel retries the delivery (`failed`)."""

    kind = "failed"


_CASES = {
    "access-denied": "Error_AccessDenied",
    "not-found": "Error_NotFound",
    "quota-exceeded": "Error_QuotaExceeded",
    "invalid": "Error_Invalid",
    "failed": "Error_Failed",
}
_BY_CASE = {_CASES[cls.kind]: cls for cls in (AccessDenied, NotFound, QuotaExceeded, Invalid, Failed)}


def access_denied(message: str) -> AccessDenied:
    """``raise access_denied("...")``: fail the call with `access-denied`."""
    return AccessDenied(message)


def not_found(message: str) -> NotFound:
    """``raise not_found("...")``: fail the call with `not-found`."""
    return NotFound(message)


def quota_exceeded(message: str) -> QuotaExceeded:
    """``raise quota_exceeded("...")``: fail the call with `quota-exceeded`."""
    return QuotaExceeded(message)


def invalid(message: str) -> Invalid:
    """``raise invalid("...")``: fail the call with `invalid`."""
    return Invalid(message)


def failed(message: str) -> Failed:
    """``raise failed("...")``: fail the call with `failed` (the kernel retries it)."""
    return Failed(message)


def from_wit(error) -> KithError:
    """The exception for a generated `error` variant case (``Error_NotFound("...")`` → ``NotFound``)."""
    cls = _BY_CASE.get(type(error).__name__)
    if cls is None:
        return Failed(f"unexpected error from the host: {error!r}")
    return cls(getattr(error, "value", ""))


def call(function, *args):
    """Call a generated host function, raising its `error` as a ``KithError``."""
    Err = _bindings.err()
    try:
        return function(*args)
    except Err as e:
        raise from_wit(e.value) from None
