"""Tests of the packaging: the Helm chart, its RBAC, the Grafana dashboard and the Dockerfiles."""
