"""The embedded single-node KRaft Kafka broker: one JVM from the Apache Kafka jars, on loopback.

``meterflow up`` / ``down`` / ``status`` and the pytest session fixture all use
:class:`EmbeddedBroker`. State lives in ``<home>/kafka``: ``server.properties``, the log dirs,
``broker.log``, ``broker.json`` (pid and ports of the running broker) and ``ports.json`` (the
ports, kept across ``down`` and a crash). A second ``up`` finds the running broker through
``broker.json`` and reuses it; a restart listens on the same ports again, so a running job and
the serving sink reconnect to the address they know (docs/architecture.md, "Faults").
Readiness is a metadata request answered by the broker, never an open port.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from meterflow.errors import StackError
from meterflow.paths import jar_dir, state_home
from meterflow.stack.process import alive, free_port, port_free, stop_group

BROKER_HEAP = "512m"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0

_LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = warn
logger.apache.name = org.apache.kafka
logger.apache.level = warn
"""


@dataclass(frozen=True)
class BrokerInfo:
    """Where a running broker listens and which process it is."""

    pid: int
    port: int
    controller_port: int
    cluster_id: str
    started_at: float

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass(frozen=True)
class BrokerStatus:
    """What ``meterflow status`` reports."""

    running: bool
    info: BrokerInfo | None
    topics: list[str]
    home: Path
    log_file: Path


class EmbeddedBroker:
    """Start, find, probe and stop the broker whose state lives under ``home``."""

    def __init__(self, home: Path | None = None) -> None:
        self.home = (home or state_home()) / "kafka"
        self.data_dir = self.home / "data"
        self.properties = self.home / "server.properties"
        self.log_file = self.home / "broker.log"
        self.state_file = self.home / "broker.json"
        self.cluster_id_file = self.home / "cluster.id"
        self.ports_file = self.home / "ports.json"

    # --- public face ---------------------------------------------------------------------------

    def up(self) -> BrokerInfo:
        """Start the broker, or return the one already running for this home."""
        running = self.running()
        if running:
            return running
        self.home.mkdir(parents=True, exist_ok=True)
        port, controller_port = self._ports()
        self.ports_file.write_text(json.dumps({"port": port, "controller_port": controller_port}))
        cluster_id = self._cluster_id()
        self._write_config(port, controller_port)
        if not (self.data_dir / "meta.properties").exists():
            self._format(cluster_id)
        with open(self.home / "broker.out", "ab") as out:  # the child keeps its own copy
            process = subprocess.Popen(
                [*self._java(), "kafka.Kafka", str(self.properties)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # survives the CLI that started it
            )
        info = BrokerInfo(process.pid, port, controller_port, cluster_id, time.time())
        self.state_file.write_text(json.dumps(asdict(info)))
        try:
            self._wait_ready(info, process)
        except StackError:
            self._kill(process.pid)
            self.state_file.unlink(missing_ok=True)
            raise
        return info

    def down(self) -> bool:
        """Stop the broker (SIGTERM, then SIGKILL after a grace period). False if none ran."""
        info = self._read_state()
        if info is None or not alive(info.pid):
            self.state_file.unlink(missing_ok=True)
            return False
        self._kill(info.pid)
        self.state_file.unlink(missing_ok=True)
        return True

    def running(self) -> BrokerInfo | None:
        """The running broker of this home, if its process lives and answers metadata requests."""
        info = self._read_state()
        if info is None or not alive(info.pid):
            return None
        return info if probe(info.bootstrap) is not None else None

    def status(self) -> BrokerStatus:
        info = self.running()
        topics = sorted(probe(info.bootstrap) or []) if info else []
        return BrokerStatus(info is not None, info, topics, self.home, self.log_file)

    def wipe(self) -> None:
        """Stop the broker and delete its data (tests and `meterflow down --wipe`)."""
        self.down()
        shutil.rmtree(self.home, ignore_errors=True)

    # --- machinery -----------------------------------------------------------------------------

    def _java(self) -> list[str]:
        java = shutil.which("java")
        if not java:
            raise StackError("java is not on PATH; install a JDK 17 (make setup checks for it)")
        log4j = self.home / "log4j2.properties"
        log4j.write_text(_LOG4J2.format(log=self.log_file))
        return [
            java,
            f"-Xmx{BROKER_HEAP}",
            f"-Xms{BROKER_HEAP}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={self.home}",
            "-cp",
            f"{jar_dir('kafka-broker')}/*",
        ]

    def _format(self, cluster_id: str) -> None:
        result = subprocess.run(
            [
                *self._java(),
                "kafka.tools.StorageTool",
                "format",
                f"--cluster-id={cluster_id}",
                "-c",
                str(self.properties),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(f"formatting the broker's log dir {self.data_dir} failed: {result.stdout}{result.stderr}")

    def _write_config(self, port: int, controller_port: int) -> None:
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "5",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "5",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # Flink's exactly-once Kafka sink needs this >= its producer transaction timeout.
            "transaction.max.timeout.ms": "3600000",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "log.cleaner.enable": "true",
        }
        self.properties.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))

    def _ports(self) -> tuple[int, int]:
        """The ports of the last start when still free (clients keep their address), else two new ones."""
        try:
            last = json.loads(self.ports_file.read_text())
            previous: tuple[int, int] | None = (int(last["port"]), int(last["controller_port"]))
        except (OSError, ValueError, TypeError, KeyError):
            info = self._read_state(require_alive=False)
            previous = (info.port, info.controller_port) if info else None
        if previous and port_free(previous[0]) and port_free(previous[1]):
            return previous
        return free_port(), free_port()

    def _cluster_id(self) -> str:
        if self.cluster_id_file.exists():
            return self.cluster_id_file.read_text().strip()
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        self.cluster_id_file.write_text(cluster_id)
        return cluster_id

    def _read_state(self, require_alive: bool = True) -> BrokerInfo | None:
        try:
            info = BrokerInfo(**json.loads(self.state_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None
        return info if (not require_alive or alive(info.pid)) else None

    def _wait_ready(self, info: BrokerInfo, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise StackError(f"the Kafka broker exited with code {process.returncode}; see {self.log_file}")
            if probe(info.bootstrap) is not None:
                return
            time.sleep(0.5)
        raise StackError(f"the Kafka broker did not answer within {READY_TIMEOUT_S:.0f}s; see {self.log_file}")

    def _kill(self, pid: int) -> None:
        stop_group(pid, STOP_TIMEOUT_S)


def probe(bootstrap: str, timeout_s: float = 3.0) -> list[str] | None:
    """Ask the broker for cluster metadata; the topic names, or None when it does not answer."""
    from kafka.errors import KafkaError

    from meterflow import kafka_clients

    try:
        admin = kafka_clients.admin(
            bootstrap, "probe", request_timeout_ms=int(timeout_s * 1000), bootstrap_timeout_ms=int(timeout_s * 1000)
        )
    except (KafkaError, OSError, ValueError):
        return None
    try:
        admin.describe_cluster()
        return [t for t in admin.list_topics() if not t.startswith("__")]
    except (KafkaError, OSError, ValueError):
        return None
    finally:
        admin.close()
