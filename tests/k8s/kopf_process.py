"""Run a kopf operator as a subprocess against the test API server (``kopf run --standalone``).

The operator under test runs exactly as it would in its pod — its own process, its own
kubeconfig (admin, or a service account's for RBAC tests), its settings in the environment —
so a test can also SIGKILL it mid-reconcile and start it again. Used by tests/operator and
the Helm/RBAC tests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.k8s.apiserver import die_with_parent, free_ports

# What the tests want from kopf: short watch requests (the API server restarts nothing, but
# stale streams must not hide events) and a quick retry of unexpected errors.
TEST_SETTINGS = {
    "METERFLOW_OPERATOR_SERVER_TIMEOUT": "10",
    "METERFLOW_OPERATOR_CLIENT_TIMEOUT": "15",
    "METERFLOW_OPERATOR_DEFAULT_BACKOFF": "1",
    "METERFLOW_OPERATOR_METRICS_PORT": "0",  # a test that scrapes them gives a free port
}


class KopfProcess:
    """``kopf run --standalone -n <namespace> -m <module>`` with a liveness endpoint, logging to a file."""

    def __init__(
        self,
        *,
        module: str,
        namespace: str,
        kubeconfig: Path,
        log: Path,
        env: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.module = module
        self.namespace = namespace
        self.kubeconfig = kubeconfig
        self.log = log
        self.env = dict(TEST_SETTINGS) | dict(env or {})
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0

    @property
    def liveness_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/healthz"

    def start(self, timeout: float = 60.0) -> KopfProcess:
        """Start it and wait until its liveness endpoint answers."""
        self.port = free_ports(1)[0]
        argv = [
            sys.executable, "-m", "kopf", "run", "--standalone", "-n", self.namespace, "-m", self.module,
            f"--liveness={self.liveness_url}", *self.extra_args,
        ]  # fmt: skip
        env = os.environ | self.env | {"KUBECONFIG": str(self.kubeconfig), "PYTHONUNBUFFERED": "1"}
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"\n===== start {self.starts}: {' '.join(argv)}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                preexec_fn=die_with_parent,  # noqa: PLW1509 (only prctl: async-signal-safe)
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the operator exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.liveness_url, timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the operator's liveness endpoint did not answer in {timeout:.0f}s:\n{self.log_tail()}")

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean-up, no finalizer work, as when its node dies."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (kopf exits gracefully), then SIGKILL."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, lines: int = 60) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
