#!/usr/bin/env bash
# Build and cache a real kube-apiserver, etcd, kubectl and helm from Go modules
# (via the Go module proxy -- no Docker, no release tarballs), so tests can run
# a real Kubernetes API server as local processes.
#
# Usage: scripts/k8s-bins.sh [DEST]
#   DEST defaults to ${METERFLOW_CACHE:-$HOME/.cache/meterflow}/k8s-bins/$K8S_VERSION
#
# If DEST already holds all four binaries and each reports the expected version,
# this exits quickly. Otherwise only the missing/wrong binaries are built, in
# throw-away wrapper modules under DEST/.build (never inside the repository).
# The Go module cache and build cache are left at their defaults, so re-builds
# are fast.
#
# Environment:
#   METERFLOW_CACHE   cache root (default: $HOME/.cache/meterflow)
#   K8S_BINS_JOBS     go build parallelism, -p (default: 2)
set -euo pipefail

K8S_VERSION=v1.36.3
ETCD_VERSION=v3.6.16
HELM_VERSION=v3.22.0

# k8s.io/* staging modules are published as v0.<minor>.<patch> of the k8s release.
K8S_STAGING_VERSION="v0.${K8S_VERSION#v1.}"
K8S_MAJOR=1
K8S_MINOR=$(echo "$K8S_VERSION" | cut -d. -f2)

DEST=${1:-${METERFLOW_CACHE:-$HOME/.cache/meterflow}/k8s-bins/${K8S_VERSION}}
BINS=(kube-apiserver etcd kubectl helm)

log() { printf '[k8s-bins] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# bin_ok NAME: the binary exists in DEST, runs, and reports the expected version.
bin_ok() {
    local name=$1 bin="$DEST/$1" out
    [[ -x $bin ]] || return 1
    case $name in
        kube-apiserver) out=$(timeout 60 "$bin" --version 2>&1) || return 1
                        [[ $out == "Kubernetes ${K8S_VERSION}" ]] ;;
        etcd)           out=$(timeout 60 "$bin" --version 2>&1) || return 1
                        grep -qx "etcd Version: ${ETCD_VERSION#v}" <<<"$out" ;;
        kubectl)        out=$(timeout 60 "$bin" version --client 2>&1) || return 1
                        grep -qx "Client Version: ${K8S_VERSION}" <<<"$out" ;;
        helm)           out=$(timeout 60 "$bin" version --short 2>&1) || return 1
                        [[ $out == "${HELM_VERSION}" || $out == "${HELM_VERSION}+"* ]] ;;
        *) return 1 ;;
    esac
}

missing_bins() {
    local b
    for b in "${BINS[@]}"; do
        bin_ok "$b" || echo "$b"
    done
}

print_versions() {
    "$DEST/kube-apiserver" --version
    "$DEST/etcd" --version
    "$DEST/kubectl" version --client
    "$DEST/helm" version --short
}

# Fast path: everything cached.
MISSING=$(missing_bins)
if [[ -z $MISSING ]]; then
    echo "k8s binaries cached in $DEST"
    exit 0
fi

command -v go >/dev/null || die "go not found in PATH (need Go >= 1.26)"
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)

# Serialise concurrent runs on the same DEST, then re-check (another run may
# have finished the work while we waited).
if command -v flock >/dev/null; then
    exec 9>"$DEST/.lock"
    flock 9
    MISSING=$(missing_bins)
    if [[ -z $MISSING ]]; then
        echo "k8s binaries cached in $DEST"
        exit 0
    fi
fi

BUILD="$DEST/.build"
OUT="$BUILD/out"
rm -rf "$BUILD"
mkdir -p "$OUT"
on_exit() {
    local rc=$?
    [[ $rc -eq 0 ]] || log "failed (exit $rc); build dir left in $BUILD"
}
trap on_exit EXIT

export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-p=${K8S_BINS_JOBS:-2}"
export GOWORK=off

log "go: $(go env GOVERSION), GOPROXY=$(go env GOPROXY), GOFLAGS=$GOFLAGS"
log "dest: $DEST"
log "to build: ${MISSING//$'\n'/ }"

need() { grep -qx "$1" <<<"$MISSING"; }

# gomod_path MODULE@VERSION: download a module and print the path of its go.mod.
gomod_path() {
    local json
    json=$(cd "$BUILD" && go mod download -json "$1") ||
        { printf '%s\n' "$json" >&2; die "go mod download $1 failed"; }
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' <<<"$json"
}

# write_tools DIR PKG...: a build-tagged file that blank-imports the main
# packages so that `go mod tidy` in the wrapper keeps their modules.
write_tools() {
    local dir=$1 p
    shift
    {
        echo '//go:build tools'
        echo
        echo 'package tools'
        echo
        echo 'import ('
        for p in "$@"; do echo "	_ \"$p\""; done
        echo ')'
    } >"$dir/tools.go"
}

install_bin() { # NAME: move a freshly built binary into DEST atomically
    mv -f "$OUT/$1" "$DEST/$1.new"
    mv -f "$DEST/$1.new" "$DEST/$1"
}

# ---------------------------------------------------------------- kubernetes
build_k8s() {
    local dir="$BUILD/k8s" gomod mods m cmd t0
    local cmds=()
    need kube-apiserver && cmds+=(kube-apiserver)
    need kubectl && cmds+=(kubectl)
    mkdir -p "$dir"

    # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them
    # with ./staging/src/... ; `go install ...@version` refuses such modules.
    # The wrapper replaces each with the published v0.<minor>.<patch> instead.
    gomod=$(gomod_path "k8s.io/kubernetes@${K8S_VERSION}")
    [[ -n $gomod && -f $gomod ]] || die "could not download k8s.io/kubernetes@${K8S_VERSION}"
    mods=$(awk '
        { for (i = 1; i < NF; i++) if ($i == "=>" && $(i+1) ~ /^\.\/staging\//) {
              m = $(i-1); if (m ~ /^v[0-9]/) m = $(i-2); rep[m] = 1 } }
        $1 == "require" && NF >= 3 { req[$2] = 1; next }
        $2 ~ /^v[0-9]/ { req[$1] = 1 }
        END { for (m in rep) if (m in req) print m }' "$gomod" | sort)
    [[ -n $mods ]] || die "no staging replace directives found in $gomod"

    (
        cd "$dir"
        go mod init local/k8sbins >/dev/null 2>&1
        local args=()
        for m in $mods; do args+=("-replace=$m=$m@$K8S_STAGING_VERSION"); done
        go mod edit "${args[@]}"
        write_tools "$dir" "${cmds[@]/#/k8s.io/kubernetes/cmd/}"
        log "k8s: resolving modules (k8s.io/kubernetes@${K8S_VERSION}, $(wc -w <<<"$mods") staging modules @ ${K8S_STAGING_VERSION})"
        local pkgs=()
        for cmd in "${cmds[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$cmd@${K8S_VERSION}"); done
        go get "${pkgs[@]}"
    )

    local build_date
    build_date=$(cd "$dir" && go list -m -f '{{with .Time}}{{.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' k8s.io/kubernetes)
    local ldflags="-s -w"
    local p
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldflags+=" -X $p.gitVersion=${K8S_VERSION}"
        ldflags+=" -X $p.gitMajor=${K8S_MAJOR}"
        ldflags+=" -X $p.gitMinor=${K8S_MINOR}"
        ldflags+=" -X $p.gitTreeState=clean"
        ldflags+=" -X $p.gitCommit="
        [[ -n $build_date ]] && ldflags+=" -X $p.buildDate=${build_date}"
    done

    for cmd in "${cmds[@]}"; do
        log "k8s: building $cmd ${K8S_VERSION} (several minutes on a cold build cache)"
        t0=$SECONDS
        (cd "$dir" && go build -trimpath -ldflags "$ldflags" -o "$OUT/$cmd" "k8s.io/kubernetes/cmd/$cmd")
        install_bin "$cmd"
        log "k8s: built $cmd in $((SECONDS - t0))s"
    done
}

# ---------------------------------------------------------------------- etcd
build_etcd() {
    local dir="$BUILD/etcd" t0
    mkdir -p "$dir"
    # go.etcd.io/etcd/server/v3 is the etcd main package; its go.mod has
    # replace directives (../api etc.), so `go install ...@version` fails.
    # In a wrapper module those replaces are ignored and the published
    # go.etcd.io/etcd/*/v3 modules of the same version are used.
    (
        cd "$dir"
        go mod init local/etcdbin >/dev/null 2>&1
        write_tools "$dir" go.etcd.io/etcd/server/v3
        log "etcd: resolving go.etcd.io/etcd/server/v3@${ETCD_VERSION}"
        go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}"
        log "etcd: building etcd ${ETCD_VERSION}"
        t0=$SECONDS
        go build -trimpath -ldflags "-s -w" -o "$OUT/etcd" go.etcd.io/etcd/server/v3
        log "etcd: built etcd in $((SECONDS - t0))s"
    )
    install_bin etcd
}

# ---------------------------------------------------------------------- helm
build_helm() {
    local gomod cgo minor t0
    # Like helm's Makefile: without these -X flags `helm version` says "v3.22"
    # and the default .Capabilities.KubeVersion (helm template / lint) is v1.20.0.
    gomod=$(gomod_path "helm.sh/helm/v3@${HELM_VERSION}")
    [[ -n $gomod && -f $gomod ]] || die "could not download helm.sh/helm/v3@${HELM_VERSION}"
    cgo=$(awk '$1 == "k8s.io/client-go" { print $2; exit }' "$gomod")
    minor=$(echo "${cgo:-v0.${K8S_MINOR}.0}" | cut -d. -f2)
    local ldflags="-s -w"
    ldflags+=" -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
    ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
    ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1"
    ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=${minor}"
    ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1"
    ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=${minor}"
    log "helm: building helm ${HELM_VERSION} (client-go ${cgo:-?})"
    t0=$SECONDS
    (cd "$BUILD" && GOBIN="$OUT" go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}")
    install_bin helm
    log "helm: built helm in $((SECONDS - t0))s"
}

T_ALL=$SECONDS
if need kube-apiserver || need kubectl; then build_k8s; fi
if need etcd; then build_etcd; fi
if need helm; then build_helm; fi

MISSING=$(missing_bins)
[[ -z $MISSING ]] || die "built, but these do not report the expected version: ${MISSING//$'\n'/ }"
rm -rf "$BUILD"
log "done in $((SECONDS - T_ALL))s"
echo "k8s binaries built in $DEST"
print_versions
