#!/usr/bin/env bash
# Image digest throughput: `spinup-smoke digest` against sha256sum and
# openssl on the same file, in one run. Usage: benches/digest.sh [SIZE_MIB]
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib="${1:-1024}"
cargo build --release --locked --quiet
bin=target/release/spinup-smoke
file="$(mktemp -d)/image.raw"
trap 'rm -rf "$(dirname "$file")"' EXIT
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$file"
# Warm the page cache so every tool reads from memory.
cat "$file" > /dev/null

best() { # best wall time in seconds of 5 runs of "$@"
  local best=999999 t
  for _ in 1 2 3 4 5; do
    t=$( { /usr/bin/time -f %e "$@" > /dev/null; } 2>&1 | tail -n1 )
    best=$(awk -v a="$best" -v b="$t" 'BEGIN { print (b < a ? b : a) }')
  done
  echo "$best"
}

ours=$(best "$bin" digest "$file")
sum=$(best sha256sum "$file")
ossl=$(best openssl dgst -sha256 "$file")
[ "$("$bin" digest "$file")" = "sha256:$(sha256sum "$file" | cut -d' ' -f1)" ] || { echo "digest mismatch" >&2; exit 1; }
printf '%-28s %8s %10s\n' tool seconds MiB/s
for row in "spinup-smoke digest:$ours" "sha256sum:$sum" "openssl dgst -sha256:$ossl"; do
  name=${row%%:*}; t=${row##*:}
  printf '%-28s %8s %10.0f\n' "$name" "$t" "$(awk -v s="$size_mib" -v t="$t" 'BEGIN { print (t > 0 ? s / t : 0) }')"
done
awk -v o="$ossl" -v u="$ours" 'BEGIN { printf "ratio to openssl: %.2fx (goal >= 0.90x)\n", (u > 0 ? o / u : 0) }'
