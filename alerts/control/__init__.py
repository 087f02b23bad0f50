"""The control plane: rules and operator suppressions, from the API to every worker.

The API process is the source of truth (its ``ControlStore``); workers receive each
change as a keyed message, and the API never calls a worker.  Messages are
``(key, value)`` pairs with JSON values:

* key ``"rules"``: ``{"revision": n, "rules": [...], "updated_at": unix_s}`` (the rule
  set override; a tombstone means "back to the configured rules");
* key ``"suppression/<id>"``: ``Suppression.to_dict()``, or a tombstone (value ``None``)
  when the suppression was deleted.

Transports, behind the ``ControlPublisher`` protocol:

* ``InProcessControl``: one process (tests, single machine); ``publish`` calls the
  subscribers synchronously, each subscriber's exceptions isolated and logged.
* ``KafkaControlPublisher`` (API side) / ``KafkaControlSubscriber`` (worker side): a
  compacted topic (default ``"argus.control"``), so the topic holds the latest value of
  every key and a worker started at any time rebuilds the whole state by reading it
  from the beginning.  The subscriber uses no consumer group: every worker reads every
  partition.

``ControlState`` folds messages into ``rules`` and ``suppressions`` (malformed values
are logged and ignored, never raised); a worker passes ``state.apply`` as the
subscriber's ``on_change``.  The last message of a key wins (log order), like
compaction itself.

Modules, one concern each (everything public is re-exported here):

* ``codec``: keys, ``encode_value``/``decode_value``, ``rules_message``, constants,
  ``ControlPublisher``, ``ControlPublishError``;
* ``state``: ``ControlState``;
* ``inprocess``: ``InProcessControl``;
* ``topic``: ``ensure_control_topic`` (the compacted topic);
* ``publisher``: ``KafkaControlPublisher``, ``PublisherHealth``;
* ``subscriber``: ``KafkaControlSubscriber``, ``SubscriberHealth``;
* ``resync``: ``republish_state``, ``ControlSource``;
* ``metrics``: the Prometheus metrics of all of the above.
"""

from alerts.control.codec import (
    DEFAULT_CONTROL_TOPIC,
    MAX_KEY_LENGTH,
    MAX_MESSAGE_BYTES,
    RULES_KEY,
    SUPPRESSION_PREFIX,
    ChangeHandler,
    ControlPublisher,
    ControlPublishError,
    ControlValue,
    decode_value,
    encode_value,
    rules_message,
    suppression_key,
)
from alerts.control.inprocess import InProcessControl
from alerts.control.metrics import (
    CONTROL_APPLIED,
    CONTROL_CONNECTED,
    CONTROL_PUBLISH_ERRORS,
    CONTROL_PUBLISHED,
)
from alerts.control.publisher import KafkaControlPublisher, PublisherHealth
from alerts.control.resync import ControlSource, republish_state
from alerts.control.state import ControlState
from alerts.control.subscriber import KafkaControlSubscriber, SubscriberHealth
from alerts.control.topic import ensure_control_topic

__all__ = [
    "CONTROL_APPLIED",
    "CONTROL_CONNECTED",
    "CONTROL_PUBLISHED",
    "CONTROL_PUBLISH_ERRORS",
    "DEFAULT_CONTROL_TOPIC",
    "MAX_KEY_LENGTH",
    "MAX_MESSAGE_BYTES",
    "RULES_KEY",
    "SUPPRESSION_PREFIX",
    "ChangeHandler",
    "ControlPublishError",
    "ControlPublisher",
    "ControlSource",
    "ControlState",
    "ControlValue",
    "InProcessControl",
    "KafkaControlPublisher",
    "KafkaControlSubscriber",
    "PublisherHealth",
    "SubscriberHealth",
    "decode_value",
    "encode_value",
    "ensure_control_topic",
    "republish_state",
    "rules_message",
    "suppression_key",
]
