"""Start the test API server by hand, with every CRD the operator needs, and keep it running.

    .venv/bin/python tests/k8s/serve.py [WORKDIR]

prints ``export KUBECONFIG=...`` for a kubeconfig of the server (admin); then, in another
shell, ``make operator-run NAMESPACE=demo`` and ``kubectl apply -f examples/...``. Ctrl-C stops
it. The same server the tests start (see docs/operator.md).
"""

from __future__ import annotations

import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: `tests.k8s`

from tests.k8s.apiserver import ApiServer, missing_bins_reason
from tests.k8s.fixtures import FLINK_CRDS, REPO, STRIMZI_CRDS


def main() -> None:
    reason = missing_bins_reason()
    if reason:
        sys.exit(reason)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop the server on `kill` too
    workdir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="meterflow-apiserver-"))
    server = ApiServer(workdir).start()
    try:
        crds = [REPO / "helm" / "meterflow" / "crds" / "meterpipelines.meterflow.io.yaml"]
        crds += sorted(STRIMZI_CRDS.glob("*.yaml")) + sorted(FLINK_CRDS.glob("*.yml"))
        server.install_crds([c for c in crds if c.exists()])
        print(f"kube-apiserver {server.url} is up; logs in {workdir}")
        print(f"export KUBECONFIG={server.kubeconfig}")
        print(f"kubectl: {server.bins / 'kubectl'}")
        sys.stdout.flush()
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
