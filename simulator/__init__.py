"""Meter simulators and real-data replay into Kafka."""
