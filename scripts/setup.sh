#!/usr/bin/env bash
# Installs what spinup-smoke's build, tests and demo need, idempotently.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
need=()
for pkg in openssl ca-certificates postgresql prometheus nginx-light nodejs npm python3-venv nix-bin nftables iproute2 openssh-client jq curl bc; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  echo "setup: apt-get install ${need[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}"
fi
if command -v rustup >/dev/null 2>&1; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
fi
# Matrix Synapse (pinned) in a venv, for the demo stack and its tests.
SYNAPSE_VERSION=1.163.2
if ! .venv/bin/python -c "import synapse, authlib, psycopg2" 2>/dev/null \
    || [ "$(.venv/bin/python -c 'import synapse; print(synapse.__version__)' 2>/dev/null)" != "$SYNAPSE_VERSION" ]; then
  echo "setup: python venv .venv with matrix-synapse $SYNAPSE_VERSION"
  python3 -m venv .venv
  .venv/bin/pip install -q "matrix-synapse[postgres,oidc]==$SYNAPSE_VERSION"
fi
.venv/bin/python -c "import yaml, testinfra" 2>/dev/null || .venv/bin/pip install -q pyyaml pytest-testinfra
# The demo IdP's npm packages (package-lock.json pins them).
if [ ! -d demo/idp/node_modules/oidc-provider ] || [ demo/idp/package-lock.json -nt demo/idp/node_modules/.package-lock.json ]; then
  echo "setup: npm ci in demo/idp"
  (cd demo/idp && npm ci --no-audit --no-fund --loglevel=error)
fi
# An sshd binary for the security checks' namespace test, without
# installing the ssh service on this machine.
if [ ! -x .cache/sshd/usr/sbin/sshd ]; then
  echo "setup: unpack openssh-server into .cache/sshd"
  mkdir -p .cache/sshd
  (cd .cache && apt-get download -q openssh-server >/dev/null && dpkg -x openssh-server_*.deb sshd && rm -f openssh-server_*.deb)
fi
echo "setup: ok"
