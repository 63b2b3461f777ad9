"""Start a real kube-apiserver and etcd as local processes, and talk to them.

No Docker, no kubelet, no controllers: just the API server (with its admission, validation,
CEL, server-side apply, RBAC and CRDs) over an etcd on loopback. The binaries come from
``make k8s-bins`` (``$METERFLOW_K8S_BINS``, default ``~/.cache/meterflow/k8s-bins/v1.36.3``).

Certificates are made with ``openssl``: a CA, a serving certificate for 127.0.0.1, an admin
client certificate in ``system:masters``, more client certificates on demand (any user and
groups, for RBAC tests), and the service-account signing key. Called by :mod:`tests.k8s.fixtures`;
the Helm/RBAC tests use :meth:`ApiServer.kubeconfig_for` (client certificates or impersonation)
and :meth:`ApiServer.create_service_account`.

What never happens here, because no controller runs: namespaces never finish deleting,
ownerReference garbage collection does not happen, pods never start, Deployments never roll.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

K8S_VERSION = "v1.36.3"
BINS_ENV = "METERFLOW_K8S_BINS"
DEFAULT_BINS = Path.home() / ".cache" / "meterflow" / "k8s-bins" / K8S_VERSION
REQUIRED_BINS = ("kube-apiserver", "etcd", "kubectl")


class ApiServerError(RuntimeError):
    """The API server or etcd could not be started or did not answer."""


def bins_dir() -> Path:
    """Where the binaries are: ``$METERFLOW_K8S_BINS`` or the ``make k8s-bins`` cache."""
    return Path(os.environ.get(BINS_ENV) or DEFAULT_BINS)


def missing_bins_reason(folder: Path | None = None) -> str | None:
    """Why the API server cannot run here (a skip reason), or None when it can."""
    folder = folder or bins_dir()
    missing = [b for b in REQUIRED_BINS if not os.access(folder / b, os.X_OK)]
    if missing:
        return (
            f"kube-apiserver/etcd/kubectl not found in {folder} (missing: {', '.join(missing)}); "
            f"run `make k8s-bins` or set {BINS_ENV}"
        )
    if not _which("openssl"):
        return "openssl is not installed; the test API server's certificates are made with it"
    return None


def _which(name: str) -> str | None:
    for part in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(part) / name
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (held open together while choosing)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def die_with_parent() -> None:
    """preexec_fn: SIGKILL the child when the test process dies (Linux prctl PR_SET_PDEATHSIG).

    SIGKILL, not SIGTERM: a kube-apiserver whose etcd died first hangs in its graceful shutdown.
    """
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


# --- certificates ------------------------------------------------------------------------------


_CA_CONFIG = """\
[req]
distinguished_name = dn
[dn]
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
"""

_SERVER_EXT = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
authorityKeyIdentifier = keyid,issuer
"""

_CLIENT_EXT = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid,issuer
"""


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, as files."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class Certificates:
    """Everything the API server and its clients need."""

    ca: KeyPair
    serving: KeyPair
    admin: KeyPair
    service_account_key: Path
    service_account_pub: Path


def _openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ApiServerError(f"openssl {' '.join(args[:2])} failed: {result.stderr.strip()}")


def _subject(user: str, groups: Sequence[str]) -> str:
    return "".join(f"/O={g}" for g in groups) + f"/CN={user}"


def sign_certificate(ca: KeyPair, folder: Path, name: str, subject: str, extensions: str) -> KeyPair:
    """A new key and a certificate for ``subject`` signed by ``ca`` (extension text in a file)."""
    key, csr, cert, ext = (folder / f"{name}.{s}" for s in ("key", "csr", "crt", "ext"))
    ext.write_text(extensions)
    _openssl("req", "-new", "-nodes", "-newkey", "rsa:2048", "-keyout", str(key), "-out", str(csr), "-subj", subject)
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key),
        "-set_serial", str(secrets.randbits(63)), "-days", "7", "-sha256", "-extfile", str(ext), "-out", str(cert),
    )  # fmt: skip
    csr.unlink()
    return KeyPair(cert, key)


def make_certificates(folder: Path) -> Certificates:
    """A CA, the serving certificate, the admin client certificate and the service-account key."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_config = folder / "ca.cnf"
    ca_config.write_text(_CA_CONFIG)
    ca = KeyPair(folder / "ca.crt", folder / "ca.key")
    _openssl(
        "req", "-x509", "-new", "-nodes", "-newkey", "rsa:2048", "-keyout", str(ca.key), "-out", str(ca.cert),
        "-days", "7", "-sha256", "-subj", "/CN=meterflow-test-ca", "-config", str(ca_config), "-extensions", "v3_ca",
    )  # fmt: skip
    serving = sign_certificate(ca, folder, "apiserver", "/CN=kube-apiserver", _SERVER_EXT)
    admin = sign_certificate(ca, folder, "admin", _subject("admin", ["system:masters"]), _CLIENT_EXT)
    sa_key, sa_pub = folder / "sa.key", folder / "sa.pub"
    _openssl("genrsa", "-out", str(sa_key), "2048")
    _openssl("rsa", "-in", str(sa_key), "-pubout", "-out", str(sa_pub))
    return Certificates(ca, serving, admin, sa_key, sa_pub)


# --- the server --------------------------------------------------------------------------------


class ApiServer:
    """kube-apiserver + etcd on loopback, with an admin kubeconfig and a kubectl to drive them."""

    def __init__(self, workdir: Path, bins: Path | None = None) -> None:
        self.workdir = workdir
        self.bins = bins or bins_dir()
        self.etcd_port, self.peer_port, self.port = free_ports(3)
        self.url = f"https://127.0.0.1:{self.port}"
        self.certs: Certificates | None = None
        self.kubeconfig = workdir / "kubeconfig"
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, Path] = {}

    # life cycle

    def start(self, timeout: float = 120.0) -> ApiServer:
        """Start etcd, then the API server; return once /readyz says ok."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.certs = make_certificates(self.workdir / "pki")
        self._spawn("etcd", [
            str(self.bins / "etcd"),
            "--name", "default",
            "--data-dir", str(self.workdir / "etcd"),
            "--listen-client-urls", f"http://127.0.0.1:{self.etcd_port}",
            "--advertise-client-urls", f"http://127.0.0.1:{self.etcd_port}",
            "--listen-peer-urls", f"http://127.0.0.1:{self.peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.peer_port}",
            "--initial-cluster", f"default=http://127.0.0.1:{self.peer_port}",
            "--unsafe-no-fsync",
            "--log-level", "warn",
        ])  # fmt: skip
        self._wait_etcd(timeout)
        c = self.certs
        self._spawn("kube-apiserver", [
            str(self.bins / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.port}",
            "--advertise-address=127.0.0.1",
            "--endpoint-reconciler-type=none",
            f"--tls-cert-file={c.serving.cert}",
            f"--tls-private-key-file={c.serving.key}",
            f"--client-ca-file={c.ca.cert}",
            f"--service-account-issuer=https://127.0.0.1:{self.port}",
            f"--service-account-key-file={c.service_account_pub}",
            f"--service-account-signing-key-file={c.service_account_key}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--authorization-mode=RBAC",
            "--disable-admission-plugins=ServiceAccount",
            "--allow-privileged=true",
        ])  # fmt: skip
        self.write_kubeconfig(self.kubeconfig, c.admin)
        self._wait_ready(timeout)
        return self

    def stop(self) -> None:
        """Stop the API server, then etcd (SIGTERM, then SIGKILL after 10 s)."""
        for name in ("kube-apiserver", "etcd"):
            proc = self._procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = self.workdir / f"{name}.log"
        self._logs[name] = log
        with log.open("ab") as out:
            self._procs[name] = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,  # noqa: PLW1509 (only prctl: async-signal-safe)
            )

    def _check_alive(self, name: str) -> None:
        proc = self._procs[name]
        if proc.poll() is not None:
            raise ApiServerError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")

    def _wait_etcd(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive("etcd")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.etcd_port}/health", timeout=2) as r:
                    if json.loads(r.read()).get("health") == "true":
                        return
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        raise ApiServerError(f"etcd did not become healthy in {timeout:.0f}s:\n{self.log_tail('etcd')}")

    def ssl_context(self) -> ssl.SSLContext:
        """Trusts the test CA and presents the admin client certificate."""
        assert self.certs is not None
        ctx = ssl.create_default_context(cafile=str(self.certs.ca.cert))
        ctx.load_cert_chain(str(self.certs.admin.cert), str(self.certs.admin.key))
        return ctx

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        ctx = self.ssl_context()
        last = ""
        while time.monotonic() < deadline:
            self._check_alive("kube-apiserver")
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", context=ctx, timeout=5) as r:
                    if r.status == 200:
                        return
            except urllib.error.HTTPError as exc:
                last = exc.read().decode(errors="replace")[-500:]
            except OSError as exc:
                last = str(exc)
            time.sleep(0.2)
        raise ApiServerError(
            f"kube-apiserver was not ready in {timeout:.0f}s ({last}):\n{self.log_tail('kube-apiserver')}"
        )

    def log_tail(self, name: str = "kube-apiserver", lines: int = 40) -> str:
        """The last lines of a process's log (for failure messages)."""
        log = self._logs.get(name)
        if not log or not log.exists():
            return ""
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    # identities

    def write_kubeconfig(
        self,
        path: Path,
        client: KeyPair | None = None,
        *,
        token: str | None = None,
        impersonate: str | None = None,
        impersonate_groups: Sequence[str] = (),
        namespace: str | None = None,
    ) -> Path:
        """A kubeconfig for this server: a client certificate or a bearer token, optionally impersonating."""
        assert self.certs is not None
        user: dict[str, Any] = {}
        if client is not None:
            user |= {"client-certificate": str(client.cert), "client-key": str(client.key)}
        if token is not None:
            user["token"] = token
        if impersonate is not None:
            user["as"] = impersonate
            if impersonate_groups:
                user["as-groups"] = list(impersonate_groups)
        context: dict[str, Any] = {"cluster": "test", "user": "test"}
        if namespace:
            context["namespace"] = namespace
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "test", "cluster": {"server": self.url, "certificate-authority": str(self.certs.ca.cert)}}
            ],
            "users": [{"name": "test", "user": user}],
            "contexts": [{"name": "test", "context": context}],
            "current-context": "test",
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path

    def kubeconfig_for(
        self,
        user: str,
        groups: Sequence[str] = (),
        *,
        impersonate: bool = True,
        namespace: str | None = None,
    ) -> Path:
        """A kubeconfig acting as ``user`` in ``groups``.

        ``impersonate=True``: the admin certificate with ``as``/``as-groups`` (what ``kubectl
        --as`` does). ``False``: a client certificate of its own with CN=user, O=groups.
        A service account is ``system:serviceaccount:<ns>:<name>`` in groups
        ``system:serviceaccounts`` and ``system:serviceaccounts:<ns>``.
        """
        assert self.certs is not None
        slug = "".join(ch if ch.isalnum() else "-" for ch in user) + "-" + secrets.token_hex(3)
        path = self.workdir / f"kubeconfig-{slug}"
        if impersonate:
            return self.write_kubeconfig(
                path, self.certs.admin, impersonate=user, impersonate_groups=groups, namespace=namespace
            )
        pair = sign_certificate(self.certs.ca, self.workdir / "pki", slug, _subject(user, groups), _CLIENT_EXT)
        return self.write_kubeconfig(path, pair, namespace=namespace)

    def service_account_identity(self, namespace: str, name: str) -> tuple[str, list[str]]:
        """The user name and groups the API server gives a service account's token."""
        return f"system:serviceaccount:{namespace}:{name}", [
            "system:serviceaccounts",
            f"system:serviceaccounts:{namespace}",
            "system:authenticated",
        ]

    # kubectl

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        kubeconfig: Path | None = None,
        check: bool = True,
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this server; raise with its stderr when ``check`` and it fails."""
        env = os.environ | {
            "KUBECONFIG": str(kubeconfig or self.kubeconfig),
            "KUBECACHEDIR": str(self.workdir / "kubecache"),
        }
        result = subprocess.run(
            [str(self.bins / "kubectl"), *args],
            input=input,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise ApiServerError(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def kubectl_json(self, *args: str, kubeconfig: Path | None = None) -> Any:
        """``kubectl ... -o json``, parsed."""
        return json.loads(self.kubectl(*args, "-o", "json", kubeconfig=kubeconfig).stdout)

    def apply(self, manifest: dict[str, Any] | Iterable[dict[str, Any]] | str, *, check: bool = True) -> str:
        """``kubectl apply --server-side`` of dicts or YAML text; returns kubectl's output (stdout+stderr)."""
        text = (
            manifest
            if isinstance(manifest, str)
            else yaml.safe_dump_all([manifest] if isinstance(manifest, dict) else list(manifest), sort_keys=False)
        )
        result = self.kubectl("apply", "--server-side", "--field-manager=test", "-f", "-", input=text, check=check)
        return result.stdout + result.stderr

    def install_crds(self, files: Iterable[Path], timeout: float = 60.0) -> list[str]:
        """Apply CRD files (server-side: the Flink CRD is too large for client-side apply) and wait Established."""
        names: list[str] = []
        for file in files:
            for doc in yaml.safe_load_all(file.read_text()):
                if doc and doc.get("kind") == "CustomResourceDefinition":
                    names.append(doc["metadata"]["name"])
            self.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(file))
        for name in names:
            self.kubectl("wait", "--for=condition=Established", f"crd/{name}", f"--timeout={int(timeout)}s")
        # Established is not yet discoverable: wait until discovery and the OpenAPI document
        # (what `kubectl explain` and kopf read) list every new resource.
        deadline = time.monotonic() + timeout
        pending = list(names)
        while pending:
            if self.kubectl("explain", pending[0], check=False).returncode == 0:
                pending.pop(0)
            elif time.monotonic() > deadline:
                raise ApiServerError(f"CRDs {pending} are Established but not discoverable after {timeout:.0f}s")
            else:
                time.sleep(0.2)
        return names

    def create_namespace(self, prefix: str = "test") -> str:
        """A fresh namespace ``<prefix>-<random>`` (never deleted: no namespace controller runs)."""
        clean = "".join(ch if ch.isalnum() else "-" for ch in prefix.lower()).strip("-")[:40].strip("-") or "test"
        name = f"{clean}-{secrets.token_hex(3)}"
        self.kubectl("create", "namespace", name)
        return name

    def create_service_account(self, namespace: str, name: str) -> Path:
        """Create a ServiceAccount and return a kubeconfig that impersonates it."""
        self.kubectl("create", "serviceaccount", name, "-n", namespace)
        user, groups = self.service_account_identity(namespace, name)
        return self.kubeconfig_for(user, groups, namespace=namespace)

    def api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` logged in as admin."""
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(config_file=str(self.kubeconfig), client_configuration=configuration)
        return client.ApiClient(configuration)


_SHARED: ApiServer | None = None


def shared_apiserver(workdir: Path) -> ApiServer:
    """The one API server of this test process, started on first use and stopped at exit.

    Several conftests (operator, Helm) may ask for it; they all get the same server.
    """
    global _SHARED  # noqa: PLW0603
    if _SHARED is None:
        server = ApiServer(workdir)
        try:
            server.start()
        except BaseException:
            server.stop()
            raise
        atexit.register(server.stop)
        _SHARED = server
    return _SHARED
