#!/usr/bin/env bash
# Installs what spinup-smoke's build, tests and demo need, idempotently.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
need=()
# podman + runc serve the Docker API for the container checks; busybox-static
# is the root filesystem of the demo's container image.
for pkg in openssl ca-certificates postgresql prometheus nginx-light python3-venv nix-bin nftables iproute2 openssh-client jq curl bc podman runc busybox-static; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
# Node.js may come from another source than Debian (with npm inside): only
# install Debian's when there is none.
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ "${#need[@]}" -gt 0 ]; then
  echo "setup: apt-get install ${need[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}"
fi
# QEMU for the build, boot and sandbox phases: qemu-system-x86 must come from
# bookworm-backports to match the image's qemu-utils 10 (bookworm's 7.2
# conflicts with it); debootstrap builds the guest image.
if ! command -v qemu-system-x86_64 >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
  src=/etc/apt/sources.list.d/debian.sources
  if [ -f "$src" ] && ! grep -rqs bookworm-backports /etc/apt/sources.list.d/; then
    echo "setup: add the bookworm-backports apt source"
    uris=$(awk '/^URIs:/ {print $2; exit}' "$src")
    signed=$(awk '/^Signed-By:/ {print $2; exit}' "$src")
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' "$uris" "$signed" \
      | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null
  fi
  echo "setup: apt-get install qemu-system-x86 qemu-utils (backports), debootstrap"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q -t bookworm-backports qemu-system-x86 qemu-utils
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q debootstrap
fi
if command -v rustup >/dev/null 2>&1; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
fi
# Matrix Synapse (pinned) in a venv, for the demo stack and its tests.
SYNAPSE_VERSION=1.163.2
if ! .venv/bin/python -c "import synapse, authlib, psycopg2" 2>/dev/null \
    || [ "$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("matrix-synapse"))' 2>/dev/null)" != "$SYNAPSE_VERSION" ]; then
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
