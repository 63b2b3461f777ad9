"""Iceberg: the raw-readings lake, its catalog (shared by pyiceberg and Flink) and upkeep."""
