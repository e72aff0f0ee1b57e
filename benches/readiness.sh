#!/usr/bin/env bash
# Readiness detection: the time from a port starting to accept connections
# to the check that waits for it passing. In one run, for the same random
# delays: spinup-smoke with `retry = { poll = "50ms" }`, spinup-smoke with
# the exponential backoff profiles used before (`initial = "200ms", max =
# "2s"`), and the 1 s sleep-and-retry loop of the NixOS test driver's
# wait_for_open_port and goss's retry-timeout (reimplemented in Python:
# neither is installed here).
#
#   benches/readiness.sh [TRIALS]     (default 10)
#   BIN=target/debug/spinup-smoke benches/readiness.sh   (skip the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
trials="${1:-10}"
if [ -z "${BIN:-}" ]; then
  cargo build --release --locked --quiet -p spinup-smoke
  BIN=target/release/spinup-smoke
fi
export BIN
exec python3 - "$trials" <<'PY'
import json, os, random, socket, subprocess, sys, tempfile, threading, time
from datetime import datetime

trials = int(sys.argv[1])
binary = os.path.abspath(os.environ["BIN"])
work = tempfile.mkdtemp(prefix="readiness-")

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def open_later(port, delay, opened):
    time.sleep(delay)
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port)); s.listen(16)
    opened.append(time.time())
    time.sleep(8)
    s.close()

def ours(retry, port, delay):
    profile = os.path.join(work, "p.toml")
    open(profile, "w").write(f'''[profile]
name = "readiness"
service = "bench"
[[check]]
id = "bench.port"
phase = "services"
timeout = "20s"
retry = {retry}
[check.tcp]
address = "127.0.0.1:{port}"
''')
    out = os.path.join(work, "out")
    opened = []
    t = threading.Thread(target=open_later, args=(port, delay, opened)); t.start()
    subprocess.run([binary, "run", "--profile", profile, "--out", out, "--format", "json"],
                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False)
    t.join()
    latest = sorted(f for f in os.listdir(out) if f.startswith("boot_transcript_") and f.endswith(".json") and "intoto" not in f)[-1]
    r = json.load(open(os.path.join(out, latest)))["validation_results"][0]
    assert r["status"] == "PASS", r
    start = datetime.fromisoformat(r["started_at"].replace("Z", "+00:00")).timestamp()
    passed = start + r["duration_ms"] / 1000
    return (passed - opened[0]) * 1000

def sleep_loop(port, delay):
    opened = []
    t = threading.Thread(target=open_later, args=(port, delay, opened)); t.start()
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close(); break
        except OSError:
            time.sleep(1)
    passed = time.time(); t.join()
    return (passed - opened[0]) * 1000

cases = {
    'spinup-smoke poll = "50ms"': lambda p, d: ours('{ poll = "50ms" }', p, d),
    'spinup-smoke initial 200ms, max 2s': lambda p, d: ours('{ initial = "200ms", max = "2s" }', p, d),
    "1 s sleep loop (NixOS driver, goss)": sleep_loop,
}
random.seed(7)
delays = [random.uniform(0.5, 6.0) for _ in range(trials)]
results = {name: [] for name in cases}
for d in delays:
    for name, f in cases.items():
        results[name].append(f(free_port(), d))
print(f"readiness: {trials} trials, port opens after 0.5-6 s (same delays for each case)")
print(f"{'case':40} {'min ms':>8} {'median':>8} {'max ms':>8}")
for name, v in results.items():
    v = sorted(v)
    print(f"{name:40} {v[0]:8.0f} {v[len(v)//2]:8.0f} {v[-1]:8.0f}")
base = sorted(results['spinup-smoke poll = "50ms"'])
peer = sorted(results["1 s sleep loop (NixOS driver, goss)"])
print(f"median ratio, 1 s loop / poll 50ms: {peer[len(peer)//2] / max(base[len(base)//2], 1):.1f}x")
PY
