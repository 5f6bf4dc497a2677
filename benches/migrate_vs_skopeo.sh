#!/usr/bin/env bash
# Benchmark: `registry-operator migrate` vs `skopeo sync --all --preserve-digests` between two local
# CNCF distribution registries, same content, one run. Prints wall time and peak RSS of both, the
# ratio, a no-op re-run over 100 tags, and migrate's peak RSS copying a 64 MiB vs a 256 MiB layer.
# Needs docker-registry, skopeo, umoci, GNU time (/usr/bin/time), curl, jq. Only binds 127.0.0.1.
# Usage: cargo build --release && benches/migrate_vs_skopeo.sh [path/to/registry-operator]
set -euo pipefail

BIN=${1:-${CARGO_TARGET_DIR:-target}/release/registry-operator}
for tool in docker-registry skopeo umoci /usr/bin/time curl jq "$BIN"; do
  command -v "$tool" >/dev/null || { echo "SKIPPED: $tool not found (install: apt-get install -y docker-registry skopeo umoci time curl jq)"; exit 0; }
done

WORK=$(mktemp -d)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_registry() { # name -> prints port
  local name=$1 port; port=$(free_port)
  mkdir -p "$WORK/$name"
  cat > "$WORK/$name/config.yml" <<YAML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $WORK/$name/data}}
http: {addr: 127.0.0.1:$port}
YAML
  docker-registry serve "$WORK/$name/config.yml" >/dev/null 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
  echo "$port"
}

SRC=$(start_registry src); DST_SKOPEO=$(start_registry dst-skopeo); DST_MIGRATE=$(start_registry dst-migrate)
echo "registries: src=$SRC skopeo-dest=$DST_SKOPEO migrate-dest=$DST_MIGRATE"

# --- content: 10 repos x 10 tags over 5 images with a shared base layer, plus 64 MiB and 256 MiB layers
OCI="$WORK/oci"; umoci init --layout "$OCI"
umoci new --image "$OCI:base"
head -c $((4 << 20)) /dev/urandom > "$WORK/base.bin"; umoci insert --image "$OCI:base" "$WORK/base.bin" /base.bin >/dev/null
for i in 0 1 2 3 4; do
  umoci config --image "$OCI:base" --tag "img$i" --config.label "n=$i"
  head -c $((2 << 20)) /dev/urandom > "$WORK/img$i.bin"; umoci insert --image "$OCI:img$i" "$WORK/img$i.bin" /img.bin >/dev/null
done
for size in 64 256; do
  umoci new --image "$OCI:big$size"
  head -c $((size << 20)) /dev/urandom > "$WORK/big$size.bin"; umoci insert --image "$OCI:big$size" "$WORK/big$size.bin" /big.bin >/dev/null
  rm "$WORK/big$size.bin"
done
push() { skopeo copy -q --all --preserve-digests --dest-tls-verify=false "oci:$OCI:$1" "docker://127.0.0.1:$SRC/$2"; }
ACCEPT='application/vnd.oci.image.manifest.v1+json'
for r in $(seq 0 9); do
  push "img$((r % 5))" "app$r:t0"
  manifest=$(curl -fs -H "Accept: $ACCEPT" "http://127.0.0.1:$SRC/v2/app$r/manifests/t0")
  for t in $(seq 1 9); do
    curl -fs -X PUT -H "Content-Type: $ACCEPT" --data-binary "$manifest" "http://127.0.0.1:$SRC/v2/app$r/manifests/t$t" >/dev/null
  done
done
push big64 big64/blob:v1; push big256 big256/blob:v1
REPOS=$(curl -fs "http://127.0.0.1:$SRC/v2/_catalog?n=1000" | jq -r '.repositories[]')
echo "content: $(echo "$REPOS" | wc -l) repos, 100 small tags + 2 big-layer tags"

measure() { # label cmd... -> "label seconds rss_kib"
  local label=$1; shift
  /usr/bin/time -v -o "$WORK/time.txt" "$@" >"$WORK/out.txt" 2>"$WORK/err.txt" || { echo "$label FAILED"; cat "$WORK/err.txt" | tail -5; exit 1; }
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$WORK/time.txt")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")
  secs=$(python3 -c "p='$wall'.split(':'); print(sum(float(x)*60**i for i,x in enumerate(reversed(p))))")
  printf '%-40s %8.2f s  %8d KiB peak RSS\n' "$label" "$secs" "$rss"
  echo "$secs $rss" > "$WORK/last.txt"
}

skopeo_all() {
  set -e
  for repo in $REPOS; do
    parent=$(dirname "$repo"); dest="127.0.0.1:$DST_SKOPEO"; [ "$parent" = . ] || dest="$dest/$parent"
    skopeo sync --all --preserve-digests --src docker --dest docker --src-tls-verify=false --dest-tls-verify=false \
      "127.0.0.1:$SRC/$repo" "$dest" >/dev/null
  done
}
export -f skopeo_all; export REPOS SRC DST_SKOPEO

echo "--- full copy (same content, empty destinations)"
measure "skopeo sync --all --preserve-digests" bash -c skopeo_all; read -r S_SECS S_RSS < "$WORK/last.txt"
measure "registry-operator migrate" "$BIN" migrate --from "http://127.0.0.1:$SRC" --to "http://127.0.0.1:$DST_MIGRATE" \
  --insecure --dest-project '' --output json; read -r M_SECS M_RSS < "$WORK/last.txt"
jq -c . "$WORK/out.txt"
python3 -c "print(f'ratio skopeo/migrate: time {$S_SECS/$M_SECS:.2f}x, peak RSS {$S_RSS/$M_RSS:.2f}x')"

echo "--- re-run, nothing to copy (100 small tags)"
measure "migrate no-op re-run (app*, 100 tags)" "$BIN" migrate --from "http://127.0.0.1:$SRC" --to "http://127.0.0.1:$DST_MIGRATE" \
  --insecure --dest-project '' --repos 'app*' --output json
jq -c '{tags, manifests, blobs, seconds}' "$WORK/out.txt"

echo "--- peak RSS vs layer size (fresh destination project each)"
measure "migrate 64 MiB layer" "$BIN" migrate --from "http://127.0.0.1:$SRC" --to "http://127.0.0.1:$DST_MIGRATE" \
  --insecure --dest-project rss64 --repos big64/blob --output json
measure "migrate 256 MiB layer" "$BIN" migrate --from "http://127.0.0.1:$SRC" --to "http://127.0.0.1:$DST_MIGRATE" \
  --insecure --dest-project rss256 --repos big256/blob --output json
