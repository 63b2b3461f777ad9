"""``python -m meterflow_operator [kopf run options]``: the operator without remembering kopf's flags.

Runs ``kopf run -m meterflow_operator.main --standalone`` with the given options; without a
namespace option it watches ``$METERFLOW_OPERATOR_NAMESPACE`` (comma-separated) or, unset,
every namespace. ``--liveness`` defaults to ``http://0.0.0.0:8080/healthz`` (the Helm chart's
probe). Used by the operator's container image and ``make operator-run``.
"""

from __future__ import annotations

import os
import sys

from kopf import cli

NAMESPACE_ENV = "METERFLOW_OPERATOR_NAMESPACE"
DEFAULT_LIVENESS = "http://0.0.0.0:8080/healthz"


def kopf_args(argv: list[str], env: dict[str, str]) -> list[str]:
    """The ``kopf run`` command line for ``argv`` (the options given to ``python -m``)."""
    args = ["run", "-m", "meterflow_operator.main"]
    if "--standalone" not in argv:
        args.append("--standalone")
    if not any(a in ("-n", "-A", "--all-namespaces") or a.startswith("--namespace") for a in argv):
        namespaces = [n.strip() for n in env.get(NAMESPACE_ENV, "").split(",") if n.strip()]
        args += [f"--namespace={n}" for n in namespaces] or ["--all-namespaces"]
    if not any(a in ("-L",) or a.startswith("--liveness") for a in argv):
        args.append(f"--liveness={DEFAULT_LIVENESS}")
    return args + argv


def main() -> None:
    cli.main(args=kopf_args(sys.argv[1:], dict(os.environ)), prog_name="meterflow-operator")


if __name__ == "__main__":
    main()
