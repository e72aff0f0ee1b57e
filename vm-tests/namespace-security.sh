#!/usr/bin/env bash
# Runs health-checks/security.toml against a real host without NixOS: a
# network namespace (its own sockets and nftables ruleset) inside a private
# mount namespace (its own /etc/ssh, /etc/passwd, /etc/group and /run), so
# nothing on the machine itself changes. It plays the two security VM tests
# on machines that cannot build NixOS:
#
#   locked    sshd without passwords or root login and with modern
#             algorithms only, nftables input policy drop with 22 and 3002
#             open, a TLS 1.2+ front on 3002 (openssl s_server) with a
#             chain to its CA, secrets 0400 with their owners on a tmpfs
#             -> spinup-smoke run exits 0, every security check passes
#   weakened  the same with PasswordAuthentication yes and a listener on
#             8080 -> exit 1, exactly security.sshd.effective_config and
#             security.ports.allow_list fail, the rest pass
#
# Both transcripts must verify against the run's public key.
#
# Usage: vm-tests/namespace-security.sh
# Environment: SPINUP_SMOKE (validator binary; default spinup-smoke on PATH,
# else target/debug/spinup-smoke), SSHD (an sshd binary; default sshd on
# PATH; `apt-get download openssh-server` + `dpkg -x` gives one without
# installing the service). Needs root, ip, nft, unshare, ssh-keygen, openssl,
# python3.
# Exit status: 0 both cases behaved, 1 one did not, 2 a tool is missing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [ "${1:-}" = "--inner" ]; then
  # Runs inside the namespaces: set the host up as case $2, run the validator.
  case_name="$2" work="$3" validator="$4"
  mount -t tmpfs -o mode=0755 tmpfs /run
  mkdir -p /run/sshd /run/secrets
  chmod 0751 /run/secrets

  # Accounts that own the secrets (a private copy of passwd and group).
  cp /etc/passwd "$work/passwd.$case_name"
  cp /etc/group "$work/group.$case_name"
  uid=61000
  for user in $(python3 -c '
import json, sys
files = json.load(open(sys.argv[1]))["secrets"]["files"]
# sshd: the privilege separation user sshd needs.
print(" ".join(sorted({o for o in files.values() if o != "root"} | {"sshd"})))' "$root/health-checks/rave-facts.json"); do
    if ! grep -q "^$user:" "$work/passwd.$case_name"; then
      echo "$user:x:$uid:$uid::/nonexistent:/usr/sbin/nologin" >> "$work/passwd.$case_name"
      echo "$user:x:$uid:" >> "$work/group.$case_name"
      uid=$((uid + 1))
    fi
  done
  mount --bind "$work/passwd.$case_name" /etc/passwd
  mount --bind "$work/group.$case_name" /etc/group

  # Secrets where sops-nix puts them: 0400, owned as the facts say.
  python3 -c '
import json, sys
facts = json.load(open(sys.argv[1]))["secrets"]
for name, owner in sorted(facts["files"].items()):
    print(facts["dir"], name, owner)' "$root/health-checks/rave-facts.json" |
  while read -r dir name owner; do
    head -c 24 /dev/urandom | base64 > "$dir/$name"
    chown "$owner:$owner" "$dir/$name"
    chmod 0400 "$dir/$name"
  done

  # sshd's own configuration directory.
  mkdir -p "$work/ssh.$case_name"
  ssh-keygen -q -t ed25519 -N '' -f "$work/ssh.$case_name/ssh_host_ed25519_key"
  password=no
  [ "$case_name" = weakened ] && password=yes
  cat > "$work/ssh.$case_name/sshd_config" <<EOF
Port 22
ListenAddress 0.0.0.0
HostKey /etc/ssh/ssh_host_ed25519_key
PasswordAuthentication $password
KbdInteractiveAuthentication no
PermitRootLogin no
KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org
Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr
MACs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com
UsePAM no
PidFile /run/sshd.pid
EOF
  mount --bind "$work/ssh.$case_name" /etc/ssh

  # The firewall as NixOS writes it: table inet nixos-fw, input drops.
  ip link set lo up
  nft -f - <<'EOF'
table inet nixos-fw {
  chain input {
    type filter hook input priority filter; policy drop;
    iifname "lo" accept
    ct state established,related accept
    tcp dport { 22, 3002 } accept
  }
}
EOF

  pids=()
  # sshd re-executes itself, so it wants an absolute path.
  "$(command -v sshd)" -D -e 2>"$work/sshd.$case_name.log" &
  pids+=("$!")
  # The TLS front: TLS 1.2 and 1.3 only, the leaf of the test CA.
  openssl s_server -quiet -www -accept 3002 -no_tls1 -no_tls1_1 \
    -cert "$work/tls/leaf.pem" -key "$work/tls/leaf.key" </dev/null >/dev/null 2>&1 &
  pids+=("$!")
  if [ "$case_name" = weakened ]; then
    python3 -m http.server 8080 --bind 0.0.0.0 >/dev/null 2>&1 &
    pids+=("$!")
  fi
  for _ in $(seq 50); do
    listening="$(awk 'NR > 1 && $4 == "0A" { print $2 }' /proc/net/tcp)"
    if grep -q ':0016$' <<< "$listening" && grep -q ':0BBA$' <<< "$listening" \
       && { [ "$case_name" != weakened ] || grep -q ':1F90$' <<< "$listening"; }; then
      break
    fi
    sleep 0.1
  done

  if ! awk 'NR > 1 && $4 == "0A" { print $2 }' /proc/net/tcp | grep -q ':0016$'; then
    echo "sshd did not start; its log:" >&2
    cat "$work/sshd.$case_name.log" >&2
    exit 3
  fi

  status=0
  "$validator" run --profile "$root/health-checks/security.toml" --phase security \
    --target "$work/target.toml" \
    --key "$work/signing.key" --out "$work/out.$case_name" --format human > "$work/run.$case_name.log" 2>&1 \
    || status=$?
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  exit "$status"
fi

if [ "$(id -u)" != 0 ]; then
  echo "namespace-security.sh: needs root (network and mount namespaces)" >&2
  exit 2
fi
validator="${SPINUP_SMOKE:-$(command -v spinup-smoke || echo "$root/target/debug/spinup-smoke")}"
sshd_bin="${SSHD:-$(command -v sshd || true)}"
for tool in ip nft unshare ssh-keygen openssl python3; do
  command -v "$tool" >/dev/null || { echo "namespace-security.sh: $tool not found" >&2; exit 2; }
done
[ -x "$validator" ] || { echo "namespace-security.sh: no validator at $validator; set SPINUP_SMOKE" >&2; exit 2; }
if [ -z "$sshd_bin" ] || [ ! -x "$sshd_bin" ]; then
  echo "namespace-security.sh: no sshd; set SSHD (apt-get download openssh-server && dpkg -x openssh-server_*.deb dir)" >&2
  exit 2
fi

work="$(mktemp -d)"
ns="spinup-security-$$"
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
  ip netns delete "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/bin"
ln -s "$sshd_bin" "$work/bin/sshd"
"$validator" keygen --out "$work/signing" >/dev/null
# A CA and the TLS front's certificate for rave.local (RSA 2048, 90 days).
mkdir -p "$work/tls"
(
  cd "$work/tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=namespace test CA" \
    -keyout ca.key -out ca.pem 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=rave.local" -keyout leaf.key -out leaf.csr 2>/dev/null
  printf 'subjectAltName=DNS:rave.local,IP:127.0.0.1\n' > san.ext
  openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 90 \
    -extfile san.ext -out leaf.pem 2>/dev/null
)
cat > "$work/target.toml" <<EOF
name = "namespace-host"
rave_version = "P6-namespace"
[vars]
tls_front.host = "rave.local"
tls_front.address = "127.0.0.1:3002"
tls_front.ca_file = "$work/tls/ca.pem"
EOF
ip netns add "$ns"

failures=0
for case_name in locked weakened; do
  status=0
  PATH="$work/bin:$PATH" ip netns exec "$ns" unshare --mount --propagation private \
    "$0" --inner "$case_name" "$work" "$validator" || status=$?
  transcript=""
  for candidate in "$work/out.$case_name"/boot_transcript_*.json; do
    case "$candidate" in *.intoto.json) ;; *) [ -f "$candidate" ] && transcript="$candidate" ;; esac
  done
  if [ -z "$transcript" ]; then
    echo "FAIL  $case_name: no transcript (exit $status)"; cat "$work/run.$case_name.log"
    failures=$((failures + 1)); continue
  fi
  want_status=0 want_failed=""
  if [ "$case_name" = weakened ]; then
    want_status=1 want_failed="security.ports.allow_list security.sshd.effective_config"
  fi
  failed="$(python3 -c '
import json, sys
doc = json.load(open(sys.argv[1]))
print(" ".join(sorted(r["id"] for r in doc["validation_results"] if r["status"] != "PASS")))' "$transcript")"
  if "$validator" verify "$transcript" --pubkey "$work/signing.pub" >/dev/null; then verified=yes; else verified=no; fi
  if [ "$status" = "$want_status" ] && [ "$failed" = "$want_failed" ] && [ "$verified" = yes ]; then
    echo "PASS  $case_name: exit $status, not passed: [${failed}], transcript verifies"
  else
    echo "FAIL  $case_name: exit $status (want $want_status), not passed: [${failed}] (want [${want_failed}]), verified: $verified"
    cat "$work/run.$case_name.log"
    failures=$((failures + 1))
  fi
done
[ "$failures" = 0 ] && echo "namespace-security.sh: both cases behaved" && exit 0
exit 1
