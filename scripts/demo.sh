#!/usr/bin/env bash
# The main job: set up, build, start the embedded demo stack (real
# PostgreSQL, Synapse, an OIDC provider, Prometheus, nginx; GitLab and
# Grafana stand-ins), validate it and verify the signed transcript.
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
# Both programs of the workspace: spinup-smoke execs spinup-smoke-demo for `demo`.
cargo build --locked --workspace
bin=target/debug/spinup-smoke

keys=.demo-keys
if [ ! -f "$keys/demo.key" ]; then
  step "signing key"
  "$bin" keygen --out "$keys/demo"
fi

step "demo: start the embedded stack, validate every phase, verify the signed transcript, stop"
# Stop a stack left over from an interrupted run first (safe when none is).
"$bin" demo down --state .demo >/dev/null
"$bin" demo --state .demo --assets "$PWD" --key "$keys/demo.key" --out artifacts/demo
