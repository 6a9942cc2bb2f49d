"""Log lines, kept per shop and plugin (capability `log`).

Logging never fails the plugin: without the capability, or past the kernel's
per-call cap (200 lines of 4 KiB), the line is dropped.
"""

from . import _bindings
from .errors import KithError, call

LEVELS = ("trace", "debug", "info", "warn", "error")
"""The levels, from the least to the most severe."""


def write(level: str, message) -> None:
    """Write a line at `level` (one of ``LEVELS``); anything not a str is written as ``str(message)``."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
    log = _bindings.host("log")
    try:
        call(log.write, log.Level[level.upper()], str(message))
    except KithError:
        # A plugin that may not log has nowhere to report that; dropping the line is the contract.
        pass


def trace(message) -> None:
    """A `trace` line."""
    write("trace", message)


def debug(message) -> None:
    """A `debug` line."""
    write("debug", message)


def info(message) -> None:
    """An `info` line."""
    write("info", message)


def warn(message) -> None:
    """A `warn` line."""
    write("warn", message)


def error(message) -> None:
    """An `error` line."""
    write("error", message)
