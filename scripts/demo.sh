#!/usr/bin/env bash
# The main job: set up, build, and validate for real, ending in a verified
# signed transcript.
#
#   ./scripts/demo.sh            # setup + build + validation + verify
#   ./scripts/demo.sh --no-setup # skip installing (already done)
set -euo pipefail
cd "$(dirname "$0")/.."

setup=1
for arg in "$@"; do
  case "$arg" in
    --no-setup) setup=0 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done
step() { printf '\n==> %s\n' "$*"; }

[ "$setup" = 0 ] || { step "setup"; ./scripts/setup.sh; }
step "build"
cargo build --locked
bin=target/debug/spinup-smoke

keys=.demo-keys
if [ ! -f "$keys/demo.key" ]; then
  step "signing key"
  "$bin" keygen --out "$keys/demo"
fi

out=artifacts/demo
mkdir -p "$out"
step "validate (selftest profile)"
status=0
"$bin" run --profile scenarios/selftest.toml --key "$keys/demo.key" --out "$out" || status=$?

step "verify the signed transcript and its attestation"
transcript=$(ls -t "$out"/boot_transcript_*.json | grep -v intoto | head -n1)
"$bin" verify "$transcript" --pubkey "$keys/demo.pub"
"$bin" verify "${transcript%.json}.intoto.json" --pubkey "$keys/demo.pub"
echo "artifacts: $out"
exit "$status"
