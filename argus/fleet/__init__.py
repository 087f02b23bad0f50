"""Cameras shared out across workers: definitions on a compacted Kafka topic, workers in a
consumer group, a capacity- and model-aware assignor, and failover.

Modules, one concern each:

* ``definitions``: a camera definition (camera, rules, model), its key and partition,
  validation, and credential references (``${NAME}``, ``${file:/path}``);
* ``view``: ``FleetView``, the topic folded into every camera's latest valid definition;
* ``assign``: ``plan`` (who runs which partition) and ``CapacityAssignor`` (kafka-python);
* ``member``: ``FleetMember``, the worker's membership of the group (its own thread);
* ``worker``: ``FleetWorker``, ``argus worker``'s composition;
* ``publish``: ``argus fleet publish`` / ``list`` / ``remove``;
* ``metrics``: the worker's Prometheus metrics.
"""
