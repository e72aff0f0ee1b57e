#!/usr/bin/env bash
# The whole test suite, as CI runs it: setup (idempotent), format, lints,
# unit + integration tests (real PostgreSQL, Synapse, IdP, QEMU guests),
# and the Nix checks that can run without nixpkgs.
#
#   ./scripts/test.sh            # everything
#   ./scripts/test.sh --no-setup # skip installing (already done)
set -euo pipefail
cd "$(dirname "$0")/.."

setup=1
for arg in "$@"; do
  case "$arg" in
    --no-setup) setup=0 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

step() { printf '\n==> %s\n' "$*"; }

if [ "$setup" = 1 ]; then
  step "setup"
  ./scripts/setup.sh
fi

step "rustfmt"
cargo fmt --all -- --check

step "clippy"
cargo clippy --all-targets --locked -- -D warnings

step "tests"
# No test is ignored here for a missing server (build.rs marks none): every
# server is installed, and a missing one fails its tests.
export SPINUP_SMOKE_REQUIRE_ALL=1
export SYNAPSE_PYTHON="${SYNAPSE_PYTHON:-$PWD/.venv/bin/python}"
# tests/agent_command.rs and the demo run the rave-agent binary; the demo's
# tests run spinup-smoke beside the demo program: build both.
cargo build --locked -p rave-agent -p spinup-smoke
# One build, then every test binary; slow stack and VM tests run once here.
cargo test --locked --no-fail-fast -- --test-threads="${TEST_THREADS:-4}"

step "nix checks (what can be proven without nixpkgs; see docs/nix.md)"
export PYTHON="${PYTHON:-$PWD/.venv/bin/python}"
export SSHD="${SSHD:-$PWD/.cache/sshd/usr/sbin/sshd}"
export SPINUP_SMOKE="$PWD/target/debug/spinup-smoke"
# The real nixpkgs lib/ and flake-utils, where this checkout sits beside them
# (../shared/nix): the module, node, flake and VM-script evaluations then run
# instead of being skipped.
shared_nix="$PWD/../shared/nix"
if [ -z "${NIXPKGS_LIB:-}" ] && [ -f "$shared_nix/nixpkgs-lib/lib/default.nix" ]; then
  export NIXPKGS_LIB="$shared_nix/nixpkgs-lib/lib"
fi
if [ -z "${FLAKE_UTILS_LIB:-}" ] && [ -f "$shared_nix/flake-utils/lib.nix" ]; then
  export FLAKE_UTILS_LIB="$shared_nix/flake-utils/lib.nix"
fi
./scripts/check-nix.sh
./scripts/check-nix.sh --self-test

step "done"
