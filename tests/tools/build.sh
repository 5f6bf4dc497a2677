#!/usr/bin/env bash
# Builds the upstream programs the tests run, from the pinned Go modules beside this script, into a cache
# outside the repository keyed by the module files' hash. Prints the directory holding the binaries.
#   tests/tools/build.sh controlplane   # kube-apiserver, kube-controller-manager, kubectl, etcd
#   tests/tools/build.sh kyverno        # the Kyverno CLI and admission controller (and its CRDs, crds/)
#   tests/tools/build.sh signing        # cosign and crane
# Reuses a complete cache entry; concurrent callers wait on a lock instead of building twice.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
set_name="${1:?usage: build.sh controlplane|kyverno|signing}"
module="$here/$set_name"
[ -f "$module/go.mod" ] || { echo "build.sh: no Go module $module" >&2; exit 2; }

case "$set_name" in
  controlplane)
    k8s=v1.37.2
    ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37"
    targets=(
      "kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver"
      "kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager"
      "kubectl k8s.io/kubernetes/cmd/kubectl"
      "etcd go.etcd.io/etcd/server/v3"
    ) ;;
  kyverno)
    ldflags="-s -w -X github.com/kyverno/kyverno/pkg/version.BuildVersion=v1.19.1"
    targets=(
      "kyverno-cli github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno"
      "kyverno github.com/kyverno/kyverno/cmd/kyverno"
    ) ;;
  signing)
    ldflags="-s -w"
    targets=(
      "cosign github.com/sigstore/cosign/v2/cmd/cosign"
      "crane github.com/google/go-containerregistry/cmd/crane"
    ) ;;
  *) echo "build.sh: unknown tool set $set_name" >&2; exit 2 ;;
esac

# The key covers what decides the binaries: the pinned modules and how they are built.
key=$( { cat "$module/go.mod" "$module/go.sum"; echo "$ldflags ${targets[*]}"; } | sha256sum | cut -c1-16)
cache_root="${REGISTRY_OPERATOR_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/registry-operator/tools}"
dest="$cache_root/$set_name-$key"
mkdir -p "$cache_root"

if [ ! -f "$dest/.complete" ]; then
  exec 9>"$cache_root/$set_name.lock"
  flock 9
  if [ ! -f "$dest/.complete" ]; then
    command -v go >/dev/null || { echo "build.sh: go not found (install Go ≥ 1.26)" >&2; exit 1; }
    tmp="$dest.partial.$$"
    rm -rf "$tmp" && mkdir -p "$tmp"
    for t in "${targets[@]}"; do
      name="${t%% *}"; pkg="${t#* }"
      started=$(date +%s)
      echo "build.sh: building $name ($pkg) ..." >&2
      (cd "$module" && CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags "$ldflags" -o "$tmp/$name" "$pkg")
      echo "build.sh: built $name in $(( $(date +%s) - started ))s" >&2
    done
    touch "$tmp/.complete"
    rm -rf "$dest" && mv "$tmp" "$dest"
  fi
  flock -u 9
fi
# Kyverno's admission controller needs all of its CRDs, which ship in the same pinned module: keep them
# beside the binaries (copied from the module cache; cheap, so done for entries built before this step).
if [ "$set_name" = kyverno ] && [ ! -f "$dest/crds/.complete" ]; then
  exec 9>"$cache_root/$set_name.lock"
  flock 9
  src="$(cd "$module" && go list -mod=readonly -m -f '{{.Dir}}' github.com/kyverno/kyverno)/config/crds"
  rm -rf "$dest/crds.partial.$$" && cp -r "$src" "$dest/crds.partial.$$" && chmod -R u+w "$dest/crds.partial.$$"
  touch "$dest/crds.partial.$$/.complete"
  [ -f "$dest/crds/.complete" ] || { rm -rf "$dest/crds" && mv "$dest/crds.partial.$$" "$dest/crds"; }
  rm -rf "$dest/crds.partial.$$"
  flock -u 9
fi
# CloudNativePG's Backup CRD (not in ../shared, which holds Cluster, Database, DatabaseRole and
# ScheduledBackup of the same release): from the pinned module v1.30.0 through the Go module proxy,
# its zip checked against the pinned hash (the other CRDs of that zip are byte-identical to ../shared).
if [ "$set_name" = controlplane ] && [ ! -f "$dest/cnpg/.complete" ]; then
  exec 9>"$cache_root/$set_name.lock"
  flock 9
  cnpg_module=github.com/cloudnative-pg/cloudnative-pg@v1.30.0
  cnpg_sum="h1:fnhVq44xXx97MNiuvJsPrX1vSjYbgdyBK5MSGfdHdp0="
  info="$(cd "$module" && GOFLAGS=-mod=mod go mod download -json "$cnpg_module")"
  sum="$(printf '%s' "$info" | sed -n 's/^[[:space:]]*"Sum": "\(.*\)",$/\1/p')"
  dir="$(printf '%s' "$info" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ "$sum" = "$cnpg_sum" ] || { echo "build.sh: $cnpg_module hash $sum, want $cnpg_sum" >&2; exit 1; }
  rm -rf "$dest/cnpg.partial.$$" && mkdir -p "$dest/cnpg.partial.$$"
  cp "$dir/config/crd/bases/postgresql.cnpg.io_backups.yaml" "$dest/cnpg.partial.$$/"
  chmod -R u+w "$dest/cnpg.partial.$$" && touch "$dest/cnpg.partial.$$/.complete"
  [ -f "$dest/cnpg/.complete" ] || { rm -rf "$dest/cnpg" && mv "$dest/cnpg.partial.$$" "$dest/cnpg"; }
  rm -rf "$dest/cnpg.partial.$$"
  flock -u 9
fi
echo "$dest"
