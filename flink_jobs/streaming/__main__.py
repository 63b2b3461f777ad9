"""``python -m flink_jobs.streaming --manifest PATH``: the streaming job's entry in a FlinkDeployment.

The operator mounts the MeterPipeline manifest from a ConfigMap and runs this module through
Flink's PythonDriver; it submits the same SQL ``meterflow run`` submits locally and then runs
the ClickHouse serving sink until the job ends.
"""

from __future__ import annotations

import argparse

from flink_jobs.streaming.runner import run_in_cluster
from meterflow.spec import load_manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="flink_jobs.streaming", description=__doc__)
    parser.add_argument("--manifest", required=True, help="path of the MeterPipeline manifest")
    args = parser.parse_args(argv)
    run_in_cluster(load_manifest(args.manifest))


if __name__ == "__main__":
    main()
