"""The embedded MQTT broker: a real Mosquitto (Debian's ``mosquitto`` 2.0) on loopback.

``meterflow up --mqtt`` (or ``up -f M`` for a manifest with ``spec.source.mqtt``), ``down`` and
``status`` use :class:`EmbeddedMosquitto`, and so does the pytest session fixture. State lives in
``<home>/mosquitto``: ``mosquitto.conf``, the persistence file ``mosquitto.db``, ``mosquitto.log``,
``mosquitto.json`` (pid and port of the running broker) and ``port`` (kept across restarts, so
clients reconnect to the same address). Readiness is an MQTT CONNACK, not an
open port.

The configuration is what a bridge that must lose nothing needs (docs/mqtt.md):

* ``persistence true``: sessions, subscriptions and queued messages are saved when the broker
  stops and every ``autosave_interval`` seconds, and reloaded on start — a restart keeps the
  bridge's queue. (A ``kill -9`` loses what arrived since the last save: Mosquitto 2.0 has no
  write-ahead log.)
* ``max_queued_messages 0`` (no cap; the default 1000 silently drops QoS-1 messages for a
  persistent session beyond that), ``max_queued_bytes`` as the memory bound instead.
* ``max_inflight_messages 1000`` for MQTT 3.1.1 clients (MQTT 5 clients, like the bridge, say how
  many they take with Receive Maximum).
* ``user`` = the current user: Mosquitto started as root otherwise drops to the ``mosquitto``
  user, which cannot write the state folder.
"""

from __future__ import annotations

import getpass
import json
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from meterflow.errors import SetupError, StackError
from meterflow.paths import state_home
from meterflow.stack.process import alive, free_port, port_free, stop_group

READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 30.0
AUTOSAVE_INTERVAL_S = 10
MAX_QUEUED_BYTES = 512 * 1024 * 1024
MAX_INFLIGHT_V311 = 1000


@dataclass(frozen=True)
class MosquittoInfo:
    """Where a running Mosquitto listens and which process it is."""

    pid: int
    port: int
    started_at: float

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


def mosquitto_binary() -> str:
    """The ``mosquitto`` executable (Debian puts it in /usr/sbin, often not on a user's PATH)."""
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise SetupError("mosquitto is not installed; run `make mosquitto` (Debian: apt-get install mosquitto)")
    return found


class EmbeddedMosquitto:
    """Start, find, probe and stop the Mosquitto whose state lives under ``home``."""

    def __init__(self, home: Path | None = None) -> None:
        self.home = (home or state_home()) / "mosquitto"
        self.config = self.home / "mosquitto.conf"
        self.log_file = self.home / "mosquitto.log"
        self.state_file = self.home / "mosquitto.json"
        self.port_file = self.home / "port"

    def up(self) -> MosquittoInfo:
        """Start Mosquitto, or return the one already running for this home."""
        running = self.running()
        if running:
            return running
        binary = mosquitto_binary()
        self.home.mkdir(parents=True, exist_ok=True)
        port = self._port()
        self.port_file.write_text(str(port))
        self._write_config(port)
        with open(self.home / "mosquitto.out", "ab") as out:  # the child keeps its own copy
            process = subprocess.Popen(
                [binary, "-c", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # survives the CLI that started it
            )
        info = MosquittoInfo(process.pid, port, time.time())
        self.state_file.write_text(json.dumps(asdict(info)))
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.state_file.unlink(missing_ok=True)
                raise StackError(f"mosquitto exited with code {process.returncode}; see {self.log_file}")
            if probe(info.url):
                return info
            time.sleep(0.1)
        stop_group(process.pid, STOP_TIMEOUT_S)
        self.state_file.unlink(missing_ok=True)
        raise StackError(
            f"mosquitto did not accept an MQTT connection within {READY_TIMEOUT_S:.0f}s; see {self.log_file}"
        )

    def down(self) -> bool:
        """Stop Mosquitto (SIGTERM: it saves its persistence file first). False if none ran."""
        info = self._read_state()
        if info is None or not alive(info.pid):
            self.state_file.unlink(missing_ok=True)
            return False
        stop_group(info.pid, STOP_TIMEOUT_S)
        self.state_file.unlink(missing_ok=True)
        return True

    def running(self) -> MosquittoInfo | None:
        """The running Mosquitto of this home, if its process lives and accepts a connection."""
        info = self._read_state()
        if info is None or not alive(info.pid):
            return None
        return info if probe(info.url) else None

    def wipe(self) -> None:
        """Stop Mosquitto and delete its sessions and queued messages."""
        self.down()
        shutil.rmtree(self.home, ignore_errors=True)

    def _write_config(self, port: int) -> None:
        settings = [
            f"listener {port} 127.0.0.1",
            "allow_anonymous true",
            f"user {getpass.getuser()}",
            "persistence true",
            f"persistence_location {self.home}/",
            f"autosave_interval {AUTOSAVE_INTERVAL_S}",
            "max_queued_messages 0",
            f"max_queued_bytes {MAX_QUEUED_BYTES}",
            f"max_inflight_messages {MAX_INFLIGHT_V311}",
            "persistent_client_expiration 14d",
            f"log_dest file {self.log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        ]
        self.config.write_text("".join(f"{line}\n" for line in settings))

    def _port(self) -> int:
        """The previous port when still free (clients keep their address across a restart), else a new one."""
        try:
            previous = int(self.port_file.read_text())
        except (OSError, ValueError):
            return free_port()
        return previous if port_free(previous) else free_port()

    def _read_state(self, require_alive: bool = True) -> MosquittoInfo | None:
        try:
            info = MosquittoInfo(**json.loads(self.state_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None
        return info if (not require_alive or alive(info.pid)) else None


def probe(url: str, timeout_s: float = 2.0) -> bool:
    """True when an MQTT broker at ``url`` answers CONNECT with a successful CONNACK.

    paho's own ``loop()`` waits in ``select()``, which fails for a socket numbered past 1023 — and a
    long-lived caller (the test session) holds that many files. So the socket is watched with
    ``selectors`` (epoll) and paho only reads and writes, its documented external-loop use."""
    import selectors

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from meterflow.stack.mqtturl import parse_mqtt_url

    address = parse_mqtt_url(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="", protocol=mqtt.MQTTv5)
    if address.tls:
        client.tls_set()
    try:
        client.connect(address.host, address.port, keepalive=10)
    except OSError:
        return False
    sock = client.socket()
    if sock is None:
        return False
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        try:
            while time.monotonic() < deadline and not client.is_connected():
                if client.want_write() and client.loop_write() != mqtt.MQTT_ERR_SUCCESS:
                    return False
                if selector.select(timeout=0.05) and client.loop_read() != mqtt.MQTT_ERR_SUCCESS:
                    return False
            return client.is_connected()
        finally:
            client.disconnect()
