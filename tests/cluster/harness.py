"""A Flink application cluster on this machine, run from a rendered FlinkDeployment.

What the Flink Kubernetes Operator does with a ``FlinkDeployment`` in application mode, minus
Kubernetes: one JobManager process (``standalone-job.sh``, the deployment's ``entryClass`` and
``args``) and one TaskManager process (``taskmanager.sh``), both from PyFlink's own ``bin``,
configured with Flink's defaults plus the deployment's ``flinkConfiguration``, with the jars the
image has in ``/opt/flink/lib`` (PyFlink's lib, the connector jars, the job jar and the
flink-python jar). The manifest the ConfigMap mounts at ``/opt/meterflow/pipeline.yaml`` is a
file here; the pod template's environment is the JobManager's.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from flink_jobs.runtime import JOB_JAR
from meterflow.paths import jar_dir
from meterflow_operator.render.common import MANIFEST_PATH

PYFLINK = Path(__import__("pyflink").__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ApplicationCluster:
    """One application cluster: ``start`` it, wait for its job, ``stop`` it (with a savepoint)."""

    folder: Path
    deployment: dict[str, Any]
    manifest: Path
    env: dict[str, str] = field(default_factory=dict)
    restore_from: str | None = None
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    rest_port: int = 0

    @property
    def rest(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def _conf(self) -> Path:
        """Flink's default configuration, the deployment's, and the local addresses."""
        defaults = yaml.safe_load((PYFLINK / "conf" / "config.yaml").read_text())
        self.rest_port = _free_port()
        config: dict[str, Any] = {
            "env.java.opts.all": defaults["env"]["java"]["opts"]["all"],
            "jobmanager.rpc.address": "127.0.0.1",
            "jobmanager.rpc.port": _free_port(),
            "jobmanager.bind-host": "127.0.0.1",
            "taskmanager.bind-host": "127.0.0.1",
            "taskmanager.host": "127.0.0.1",
            "rest.address": "127.0.0.1",
            "rest.bind-address": "127.0.0.1",
            "rest.port": self.rest_port,
            "jobmanager.memory.process.size": "1200m",
            "taskmanager.memory.process.size": "2200m",
            "python.client.executable": sys.executable,
            "python.executable": sys.executable,
        }
        config |= self.deployment["spec"]["flinkConfiguration"]
        if self.restore_from:
            config["execution.state-recovery.path"] = self.restore_from
        conf = self.folder / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "config.yaml").write_text("".join(f"{k}: {v}\n" for k, v in config.items()))
        for name in ("log4j-console.properties", "log4j.properties"):
            (conf / name).write_text((PYFLINK / "conf" / name).read_text())
        return conf

    def _lib(self) -> Path:
        """/opt/flink/lib of the image: PyFlink's lib, the connector jars, the job jar, flink-python."""
        lib = self.folder / "lib"
        lib.mkdir(parents=True, exist_ok=True)
        jars = [*(PYFLINK / "lib").glob("*.jar"), *jar_dir("flink").glob("*.jar"), JOB_JAR]
        jars += list((PYFLINK / "opt").glob("flink-python-*.jar"))
        for jar in jars:
            link = lib / jar.name
            if not link.exists():
                link.symlink_to(jar)
        return lib

    def start(self) -> None:
        """The JobManager (running the deployment's entry class and args) and one TaskManager."""
        job = self.deployment["spec"]["job"]
        args = [str(self.manifest) if a == MANIFEST_PATH else a for a in job["args"]]
        log = self.folder / "log"
        log.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ) | self.env
        env |= {"FLINK_LIB_DIR": str(self._lib()), "FLINK_CONF_DIR": str(self._conf()), "FLINK_LOG_DIR": str(log)}
        jobmanager = [
            str(PYFLINK / "bin" / "standalone-job.sh"),
            "start-foreground",
            "--job-classname",
            job["entryClass"],
        ]
        taskmanager = [str(PYFLINK / "bin" / "taskmanager.sh"), "start-foreground"]
        for name, command in (("jobmanager", [*jobmanager, *args]), ("taskmanager", taskmanager)):
            out = (log / f"{name}.out").open("ab")
            self.processes.append(
                subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            )

    def log(self) -> str:
        return (self.folder / "log" / "jobmanager.out").read_text(errors="replace")

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(self.rest + path, timeout=10) as response:
            return json.loads(response.read())

    def job(self) -> dict[str, Any] | None:
        """The cluster's job (id, name, state), or None before it is submitted."""
        try:
            jobs = self._get("/jobs/overview")["jobs"]
        except OSError:
            return None
        return jobs[0] if jobs else None

    def wait_running(self, timeout_s: float = 300.0) -> dict[str, Any]:
        """The job once every task runs; the JobManager's log tail when it does not get there."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            job = self.job()
            if job and job["state"] == "RUNNING" and job["tasks"]["running"] == job["tasks"]["total"]:
                return job
            if self.processes[0].poll() is not None:
                break
            time.sleep(1)
        raise AssertionError(f"the application's job is not running:\n{self.log()[-3000:]}")

    def stop_with_savepoint(self, directory: Path, drain: bool) -> str:
        """Stop the job with a savepoint (what the Flink operator does for an upgrade); its path."""
        job = self.job()
        assert job is not None
        body = json.dumps({"targetDirectory": directory.as_uri(), "drain": drain}).encode()
        request = urllib.request.Request(
            f"{self.rest}/jobs/{job['jid']}/stop", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            trigger = json.loads(response.read())["request-id"]
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            status = self._get(f"/jobs/{job['jid']}/savepoints/{trigger}")
            if status["status"]["id"] == "COMPLETED":
                operation = status["operation"]
                if "failure-cause" in operation:
                    raise AssertionError(f"the savepoint failed: {operation['failure-cause']}")
                return str(operation["location"])
            time.sleep(1)
        raise AssertionError("the savepoint did not complete")

    def wait_finished(self, timeout_s: float = 300.0) -> int:
        """The JobManager's exit code once the application is done (its Python sink drains first)."""
        try:
            return self.processes[0].wait(timeout=timeout_s)
        finally:
            self.close()

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        self.processes.clear()
