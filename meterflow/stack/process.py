"""Process and port helpers shared by the embedded services (Kafka broker, Mosquitto).

Each service runs in its own process group (``start_new_session``) so that stopping it stops
everything it started; its pid and ports are kept in a JSON file next to its state.
"""

from __future__ import annotations

import os
import signal
import socket
import time


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie child of this process counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def stop_group(pid: int, timeout_s: float) -> None:
    """SIGTERM the process group of ``pid``; SIGKILL it if it still runs after ``timeout_s``."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.1)
    if alive(pid):
        os.killpg(pid, signal.SIGKILL)


def free_port() -> int:
    """A TCP port on loopback nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_free(port: int) -> bool:
    """True when a server (SO_REUSEADDR, as Kafka and Mosquitto set it) can listen on ``port`` on loopback.

    Without SO_REUSEADDR a port whose old connections linger in TIME_WAIT after a restart would look
    taken, and the service would move to another port under its clients' feet.
    """
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
