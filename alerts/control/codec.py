"""Control messages: keys, the JSON wire form, the publisher protocol and its error."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

DEFAULT_CONTROL_TOPIC = "argus.control"
RULES_KEY = "rules"
SUPPRESSION_PREFIX = "suppression/"
MAX_KEY_LENGTH = 256
MAX_MESSAGE_BYTES = 900 * 1024
"""Largest encoded control value, bytes (Kafka's default message limit is about 1 MiB)."""

_KEY_RE = re.compile(rf"[\x21-\x7e]{{1,{MAX_KEY_LENGTH}}}")

ControlValue = Mapping[str, Any] | None
ChangeHandler = Callable[[str, Any], object]
"""``on_change(key, value)``: ``value`` is the decoded JSON value, or ``None`` (tombstone)."""


class ControlPublishError(RuntimeError):
    """A control message was not delivered (the API answers 503; nothing changed).

    Attributes:
        key: Key of the message.
        reason: Why, without secrets.
    """

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"control message {key!r} not published: {reason}")


@runtime_checkable
class ControlPublisher(Protocol):
    """Where the API sends control changes."""

    def publish(self, key: str, value: ControlValue) -> None:
        """Deliver one change (``None``: tombstone); raises ``ControlPublishError``."""
        ...


def describe_error(error: BaseException) -> str:
    """``"Type: message"`` of an error, once (kafka-python's messages start with the type)."""
    text = str(error)
    name = type(error).__name__
    return (text if text.startswith(name) else f"{name}: {text}")[:300]


def suppression_key(suppression_id: str) -> str:
    """The control key of a suppression: ``"suppression/<id>"``."""
    return SUPPRESSION_PREFIX + suppression_id


def rules_message(
    revision: int, rules: Sequence[Mapping[str, Any]], updated_at: float
) -> dict[str, Any]:
    """The value of the ``"rules"`` key."""
    return {"revision": revision, "rules": [dict(r) for r in rules], "updated_at": updated_at}


def encode_value(key: str, value: ControlValue) -> bytes | None:
    """The wire form of ``value`` (compact UTF-8 JSON; ``None`` stays ``None``).

    Raises:
        ValueError: ``key`` is empty, too long or has spaces/control characters; the
            value is not JSON-serialisable (NaN included) or over ``MAX_MESSAGE_BYTES``.
    """
    if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
        raise ValueError(f"control key must be 1..{MAX_KEY_LENGTH} printable ASCII characters")
    if value is None:
        return None
    try:
        raw = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"control value of {key!r} is not JSON: {e}") from e
    data = raw.encode("utf-8")
    if len(data) > MAX_MESSAGE_BYTES:
        raise ValueError(
            f"control value of {key!r} is {len(data)} bytes, over {MAX_MESSAGE_BYTES} bytes"
        )
    return data


def decode_value(raw: bytes | None) -> Any:
    """Inverse of ``encode_value``.

    Raises:
        ValueError: Not UTF-8 JSON (``RecursionError`` for absurd nesting included).
    """
    if raw is None:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ValueError(f"{type(e).__name__}: {e}"[:300]) from e
