#!/usr/bin/env bash
# Every benchmark in one run, each against its peer on this machine:
#   digest throughput        spinup-smoke digest vs openssl dgst -sha256 (and sha256sum)
#   readiness detection      poll = "50ms" vs the 1 s loop of the NixOS driver and goss
#   services phase           spinup-smoke vs pytest-testinfra, same checks, same stack;
#                            the phase's wall time against its critical path
#   full demo run            the validator's peak RSS (VmHWM of the demo process,
#                            which runs the validation in-process)
#   verify                   spinup-smoke verify (whole process) vs openssl pkeyutl
#                            -verify of the same DSSE signature
#   runner overhead          cargo bench --bench runner (1,000 trivial checks)
#
#   benches/all.sh            (needs ./scripts/setup.sh; about 10 minutes)
# Figures go to stdout; docs/BENCHMARKS.md records them with the machine's load.
set -euo pipefail
cd "$(dirname "$0")/.."
section() { printf '\n### %s\n' "$*"; }
cargo build --release --locked --quiet --workspace
bin=target/release/spinup-smoke
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"

section "digest (512 MiB)"
benches/digest.sh 512

section "readiness (6 trials)"
BIN=$bin benches/readiness.sh 6

section "services phase (5 runs each)"
benches/services.sh 5

section "full demo run: validator peak RSS"
out=$(mktemp -d)
python3 - "$bin" "$out" <<'PY'
import subprocess, sys, time
binary, out = sys.argv[1], sys.argv[2]
start = time.monotonic()
child = subprocess.Popen([binary, "demo", "--out", out], stdout=open(f"{out}/demo.log", "w"), stderr=subprocess.STDOUT)
peak = 0
while child.poll() is None:
    try:
        for line in open(f"/proc/{child.pid}/status"):
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]))
    except OSError:
        pass
    time.sleep(0.1)
took = time.monotonic() - start
summary = [l for l in open(f"{out}/demo.log") if l.startswith(("SUCCESS", "WARNING", "FAILURE"))]
print(f"spinup-smoke demo exited {child.returncode} in {took:.0f} s: {summary[0].strip() if summary else '(no summary)'}")
print(f"peak RSS of the validating process: {peak / 1024:.1f} MiB (goal < 64 MiB)")
PY

section "verify (best of 20, whole process)"
transcript=$(ls "$out"/boot_transcript_*.json 2>/dev/null | grep -v intoto | head -n1 || true)
envelope=${transcript%.json}.intoto.json
if [ -z "$transcript" ] || [ ! -f "$envelope" ]; then
  echo "no demo transcript in $out: skipped"
else
  python3 - "$bin" "$transcript" "$envelope" "$out" <<'PY'
import base64, json, subprocess, sys, time
binary, transcript, envelope, out = sys.argv[1:5]
doc = json.load(open(envelope))
payload = base64.b64decode(doc["payload"])
open(f"{out}/sig.bin", "wb").write(base64.b64decode(doc["signatures"][0]["sig"]))
ptype = doc["payloadType"].encode()
open(f"{out}/pae.bin", "wb").write(b"DSSEv1 %d %s %d " % (len(ptype), ptype, len(payload)) + payload)
# The public key the envelope was signed with (the demo's key), written as
# PEM from the transcript's signature block (base64 SubjectPublicKeyInfo DER).
der = json.load(open(transcript))["signature"]["public_key"]
lines = [der[i:i + 64] for i in range(0, len(der), 64)]
open(f"{out}/signer.pub", "w").write("-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n")
def best(cmd, n=20):
    t = []
    for _ in range(n):
        s = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True)
        t.append(time.perf_counter() - s)
        assert r.returncode == 0, (cmd, r.stdout, r.stderr)
    return min(t) * 1000
ours_t = best([binary, "verify", transcript, "--pubkey", f"{out}/signer.pub"])
ours_e = best([binary, "verify", envelope, "--pubkey", f"{out}/signer.pub"])
ossl = best(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", f"{out}/signer.pub", "-rawin", "-in", f"{out}/pae.bin", "-sigfile", f"{out}/sig.bin"])
print(f"spinup-smoke verify transcript: {ours_t:.1f} ms, DSSE envelope: {ours_e:.1f} ms (goal < 10 ms)")
print(f"openssl pkeyutl -verify (the signature alone): {ossl:.1f} ms; ratio {ossl / ours_e:.2f}x")
PY
fi

section "runner overhead"
cargo bench --locked --quiet --bench runner 2>/dev/null | tail -n 6
