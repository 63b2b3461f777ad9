"""The MQTT → Kafka bridge of a MeterPipeline with ``spec.source.mqtt`` (docs/mqtt.md).

:mod:`meterflow_bridge.mapping` turns one MQTT message into readings or a dead-letter reason
(pure); :mod:`meterflow_bridge.runtime` subscribes with a persistent QoS-1 session, produces to
Kafka with an idempotent producer and acknowledges each message only once Kafka has it. Run by
``meterflow bridge -f MANIFEST`` (locally, and in the Deployment the operator renders).
"""
