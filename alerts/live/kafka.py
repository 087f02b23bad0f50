"""The live state across processes: camera statuses and live pictures on Kafka, demand on
the control channel.

Workers (``argus run`` with ``bus.kafka``) send through ``KafkaLivePublisher`` (a
``LiveSink``):

* every ``CameraStatus`` as JSON, keyed by camera id, to the compacted camera status topic
  (default ``"argus.cameras"``): the topic holds every camera's last status, so an API
  replica that starts reads it from the beginning and knows every camera at once; a
  tombstone (``forget``) removes a camera;
* every ``Preview`` in its wire form (``Preview.encode``), keyed by camera id, to the
  preview topic (default ``"argus.previews"``, ``cleanup.policy=delete`` with a short
  ``retention.ms``): pictures are useful for seconds, so readers start at its end.

Both are fire-and-forget: the caller (the pipeline's detector loop) only puts the report
in a small pending set that a background thread sends; a lost status or picture only
delays the next one.  While the broker is away, pictures are dropped and statuses
coalesce to the latest per camera (counted in ``argus_live_dropped_total``).

API replicas read both topics with ``KafkaLiveSubscriber`` (no consumer group: every
replica reads every partition) into their ``LiveBoard``, and publish their watchers'
demand with ``DemandPublisher`` on the control channel under ``DEMAND_PREFIX + replica``;
workers fold those messages into their ``Demand`` (``argus.reload.LiveConfig``).

The parts: ``kafka_common`` (topic names, bounds, metrics, ``ensure_live_topics``),
``kafka_publisher``, ``kafka_subscriber`` and ``demand_publisher``; this module gathers them.
"""

from alerts.live.demand_publisher import DemandPublisher, DemandPublisherHealth
from alerts.live.kafka_common import (
    DEFAULT_PREVIEW_TOPIC,
    DEFAULT_STATUS_TOPIC,
    PREVIEW_RETENTION_MS,
    ensure_live_topics,
)
from alerts.live.kafka_publisher import KafkaLivePublisher, LivePublisherHealth
from alerts.live.kafka_subscriber import KafkaLiveSubscriber, LiveSubscriberHealth

__all__ = [
    "DEFAULT_PREVIEW_TOPIC",
    "DEFAULT_STATUS_TOPIC",
    "PREVIEW_RETENTION_MS",
    "DemandPublisher",
    "DemandPublisherHealth",
    "KafkaLivePublisher",
    "KafkaLiveSubscriber",
    "LivePublisherHealth",
    "LiveSubscriberHealth",
    "ensure_live_topics",
]
