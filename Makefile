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
UDF_SRC := $(shell find flink_jobs/udf/src -name '*.java')
UDF_JAR := flink_jobs/udf/build/meterflow-udf.jar
K8S_VERSION := v1.36.3
K8S_BINS := $(CACHE)/k8s-bins/$(K8S_VERSION)
PYTEST_ARGS ?=

export UV_PYTHON_DOWNLOADS := never
export UV_CACHE_DIR ?= $(CACHE)/uv

.PHONY: help setup venv jars udf k8s-bins check-java test test-unit lint format crd demo bench bench-smoke clean \
        kind-up kind-deps kind-deploy kind-demo kind-down images

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[1m%-12s\033[0m %s\n", $$1, $$2}'

# --- set-up ------------------------------------------------------------------------------------

setup: venv jars udf ## Python env, Flink/Kafka jars and the UDF jar (everything `make demo` needs)

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

jars: check-java $(CACHE)/jars/kafka-broker/.pom $(CACHE)/jars/flink/.pom ## Fetch the broker and Flink connector jars with mvn

$(CACHE)/jars/kafka-broker/.pom: jars/kafka-broker/pom.xml
	@echo "==> fetching the Kafka broker jars"
	rm -rf $(@D) && mkdir -p $(@D)
	mvn -q -B -f $< dependency:copy-dependencies -DoutputDirectory=$(@D)
	cp $< $@

$(CACHE)/jars/flink/.pom: jars/flink/pom.xml
	@echo "==> fetching the Flink connector jars"
	rm -rf $(@D) && mkdir -p $(@D)
	mvn -q -B -f $< dependency:copy-dependencies -DoutputDirectory=$(@D) -DexcludeTransitive=true
	cp $< $@

udf: $(UDF_JAR) ## Compile the JVM reading parser used by the streaming job
$(UDF_JAR): $(UDF_SRC) $(VENV)/.synced
	@echo "==> compiling $(UDF_JAR)"
	rm -rf flink_jobs/udf/build && mkdir -p flink_jobs/udf/build/classes
	javac -nowarn -source 17 -target 17 -cp '$(PYFLINK_LIB)/*' -d flink_jobs/udf/build/classes $(UDF_SRC)
	jar cf $@ -C flink_jobs/udf/build/classes .

k8s-bins: ## Build kube-apiserver, etcd, kubectl and helm from Go modules (cached)
	scripts/k8s-bins.sh $(K8S_BINS)

# --- quality -----------------------------------------------------------------------------------

test: setup k8s-bins ## Unit and integration tests against the real broker, Flink, Iceberg, chDB and kube-apiserver
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
	$(PY) -m flink_jobs.demo

bench: setup ## Benchmarks (throughput, latency, batch, serving); writes bench/results/<time>.json
	$(PY) -m bench.run

bench-smoke: setup ## A small, quick run of the benchmark harness
	$(PY) -m bench.run --smoke

clean: ## Stop the broker and delete local state (.meterflow) and build output
	-$(METERFLOW) down
	rm -rf .meterflow flink_jobs/udf/build .pytest_cache .mypy_cache .ruff_cache

# --- the operator (docs/operator.md) -----------------------------------------------------------

.PHONY: operator-run
operator-run: venv ## Run the operator against $KUBECONFIG in NAMESPACE (default: default); see docs/operator.md
	$(PY) -m meterflow_operator --namespace=$(or $(NAMESPACE),default) --liveness=http://127.0.0.1:8080/healthz
