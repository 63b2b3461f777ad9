"""Create a PyFlink TableEnvironment the same way on both runtimes.

Locally (``meterflow run`` / ``meterflow batch``) PyFlink starts its own JVM with a mini-cluster:
this module puts the connector jars and the job jar on that JVM's main classpath (Iceberg's
JdbcCatalog needs them there, not only in ``pipeline.jars``), sends Flink's logs to a file under
the state folder, and picks a free port for the web UI. On Kubernetes the PythonDriver already
runs inside the JobManager's JVM (``PYFLINK_GATEWAY_PORT`` is set) and the image's
``/opt/flink/lib`` holds the jars, so only the job configuration applies.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meterflow.errors import SetupError
from meterflow.paths import jar_dir, state_home
from meterflow.stack.process import free_port

JOB_JAR = Path(__file__).resolve().parent / "jvm" / "build" / "meterflow-flink.jar"
"""The JVM side of the jobs (``make jvm``): the streaming job's operators."""
LOCAL_JVM_HEAP = os.environ.get("METERFLOW_FLINK_HEAP", "3g")

_LOG4J = """\
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FileAppender
logger.kafka.name = org.apache.kafka
logger.kafka.level = WARN
logger.hadoop.name = org.apache.hadoop
logger.hadoop.level = WARN
logger.iceberg.name = org.apache.iceberg
logger.iceberg.level = WARN
appender.file.name = FileAppender
appender.file.type = FILE
appender.file.append = true
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{{yyyy-MM-dd HH:mm:ss,SSS}} %-5p %-60c %x - %m%n
"""


@dataclass(frozen=True)
class LocalCluster:
    """What the local mini-cluster exposes."""

    web_ui: str
    log_file: Path


def prepare_local_jvm(job_name: str, jvm_options: str = "") -> LocalCluster:
    """Set the environment PyFlink's launcher reads before it starts the local JVM (``jvm_options``
    are added to the heap and collector settings; a JVM already running keeps its own)."""
    if not JOB_JAR.exists():
        raise SetupError(f"the job jar {JOB_JAR} is missing; run `make jvm` (or `make setup`)")
    jars = jar_dir("flink")
    logs = state_home() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_file = logs / f"flink-{job_name}.log"
    log4j = logs / f"log4j-{job_name}.properties"
    log4j.write_text(_LOG4J.format(log=log_file))
    os.environ["HADOOP_CLASSPATH"] = f"{jars}/*{os.pathsep}{JOB_JAR}"
    os.environ["FLINK_LOG_DIR"] = str(logs)
    os.environ["LOG4J_PROPERTIES"] = str(log4j)
    os.environ["JVM_ARGS"] = f"-Xmx{LOCAL_JVM_HEAP} -XX:+UseG1GC {jvm_options}".strip()
    port = free_port()
    return LocalCluster(web_ui=f"http://127.0.0.1:{port}", log_file=log_file)


def table_environment(streaming: bool, config: dict[str, str]) -> Any:
    """A TableEnvironment in streaming or batch mode with ``config`` applied."""
    from pyflink.common import Configuration
    from pyflink.table import EnvironmentSettings, TableEnvironment

    conf = Configuration()
    for key, value in config.items():
        conf.set_string(key, value)
    builder = EnvironmentSettings.new_instance()
    builder = builder.in_streaming_mode() if streaming else builder.in_batch_mode()
    return TableEnvironment.create(builder.with_configuration(conf).build())


def stream_environment(config: dict[str, str]) -> Any:
    """A StreamExecutionEnvironment with ``config`` applied (the streaming job is DataStream API)."""
    from pyflink.common import Configuration
    from pyflink.datastream import StreamExecutionEnvironment

    conf = Configuration()
    for key, value in config.items():
        conf.set_string(key, value)
    return StreamExecutionEnvironment.get_execution_environment(conf)


def web_ui_port(cluster: LocalCluster) -> str:
    return cluster.web_ui.rsplit(":", 1)[1]


def stop_with_savepoint(
    job_client: Any, drain: bool, directory: Path, timeout_s: float = 300.0, retry_s: float | None = None
) -> str:
    """Stop the job with a savepoint; with ``drain`` the watermark first advances to the end of
    event time, so every open window fires. Returns the savepoint path.

    PyFlink 2.2's ``JobClient.stop_with_savepoint`` still calls the two-argument Java method that
    Flink 2 removed; this calls the current one (with the canonical savepoint format). ``retry_s``
    bounds how long it is asked again while the job's tasks are not running (default: ``timeout_s``).
    """
    return _savepoint(
        lambda jvm, fmt: job_client._j_job_client.stopWithSavepoint(drain, directory.as_uri(), fmt),
        timeout_s,
        timeout_s if retry_s is None else retry_s,
    )


def trigger_savepoint(job_client: Any, directory: Path, timeout_s: float = 300.0) -> str:
    """Take a savepoint and keep the job running; returns its path (canonical format, as above)."""
    return _savepoint(
        lambda jvm, fmt: job_client._j_job_client.triggerSavepoint(directory.as_uri(), fmt), timeout_s, timeout_s
    )


_NOT_RUNNING_YET = ("is not being executed at the moment", "Not all required tasks are currently running")
"""A savepoint asked for before every task is up is refused with these words; it is asked again."""


def _savepoint(request: Callable[[Any, Any], Any], timeout_s: float, retry_s: float) -> str:
    """Run a savepoint ``request`` (a Java future), again for up to ``retry_s`` while the job's tasks
    are still starting (or restarting)."""
    from py4j.protocol import Py4JJavaError
    from pyflink.java_gateway import get_gateway

    jvm = get_gateway().jvm
    canonical = jvm.org.apache.flink.core.execution.SavepointFormatType.CANONICAL
    deadline = time.monotonic() + retry_s
    while True:
        future = request(jvm, canonical)
        try:
            return str(future.get(int(timeout_s * 1000), jvm.java.util.concurrent.TimeUnit.MILLISECONDS))
        except Py4JJavaError as exc:
            if not any(words in str(exc.java_exception) for words in _NOT_RUNNING_YET) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
