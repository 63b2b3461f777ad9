"""``python -m flink_jobs.batch --manifest PATH [--from DAY --to DAY] [--as-of ID|TIME]``: one batch run.

The FlinkDeployment entry on Kubernetes (the operator runs ``-pym flink_jobs.batch --manifest
/opt/meterflow/pipeline.yaml`` on the schedule in ``spec.batch.schedule``); locally it does what
``meterflow batch`` does.
"""

from __future__ import annotations

import argparse
import sys

from meterflow.errors import MeterflowError
from meterflow.spec import load_manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flink_jobs.batch", description=__doc__)
    parser.add_argument("--manifest", required=True, help="path of the MeterPipeline manifest")
    parser.add_argument("--from", dest="day_from", help="first local day to recompute (YYYY-MM-DD)")
    parser.add_argument("--to", dest="day_to", help="last local day to recompute (YYYY-MM-DD, inclusive)")
    parser.add_argument("--as-of", dest="as_of", help="Iceberg snapshot id, or a time (ISO 8601), to read")
    parser.add_argument("--no-expire", action="store_true", help="skip the snapshot expiry after the run")
    args = parser.parse_args(argv)
    from flink_jobs.batch.run import run_batch

    try:
        summary = run_batch(
            load_manifest(args.manifest), args.day_from, args.day_to, args.as_of, expire=not args.no_expire, echo=print
        )
    except MeterflowError as exc:
        print(f"flink_jobs.batch: {exc}", file=sys.stderr)
        return 2
    print(summary.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
