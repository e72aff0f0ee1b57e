#!/usr/bin/env bash
# The services phase against the running demo stack: spinup-smoke versus
# the same checks in pytest-testinfra, in one run. Also reports the ratio of
# the phase's wall time to its slowest single check (concurrency at work).
#   benches/services.sh [RUNS]     (needs ./scripts/setup.sh; starts and stops the stack)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
cargo build --release --locked --quiet --workspace
bin=target/release/spinup-smoke
work=$(mktemp -d); chmod 755 "$work"  # the postgres user must reach the state
state=$work/demo
trap '"$bin" demo down --state "$state" >/dev/null 2>&1 || true' EXIT
up_start=$(date +%s.%N)
"$bin" demo up --state "$state" --assets "$PWD"
up_end=$(date +%s.%N)
target="$state/target.toml"
out=$(mktemp -d)

ours=()
for _ in $(seq "$runs"); do
  s=$(date +%s.%N)
  "$bin" run --profile health-checks --target "$target" --phase services --out "$out" --format json > "$out/last.json" 2>/dev/null || true
  e=$(date +%s.%N)
  ours+=("$(echo "$e - $s" | bc)")
done
theirs=()
for _ in $(seq "$runs"); do
  s=$(date +%s.%N)
  SPINUP_TARGET="$target" .venv/bin/python -m pytest -q -p no:cacheprovider benches/testinfra/test_services.py > "$out/pytest.txt" 2>&1 || true
  e=$(date +%s.%N)
  theirs+=("$(echo "$e - $s" | bc)")
done
best() { printf '%s\n' "$@" | sort -g | head -n1; }
o=$(best "${ours[@]}"); t=$(best "${theirs[@]}")
python3 - "$out/last.json" "$o" "$t" "$(echo "$up_end - $up_start" | bc)" "$out/pytest.txt" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
ours, theirs, up = float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
res = [r for r in doc["validation_results"] if r["phase"] == "services"]
slowest = max(r["duration_ms"] for r in res) / 1000
phase = doc["performance_metrics"]["phase_durations_ms"].get("services", 0) / 1000
print(f"demo up:                               {up:7.2f} s")
print(f"services checks:                       {len(res)} ({doc['test_summary']})")
print(f"spinup-smoke run --phase services:     {ours:7.3f} s (best of runs, whole process)")
print(f"  services phase wall time:            {phase:7.3f} s, slowest single check {slowest:.3f} s, ratio {phase / slowest if slowest else 0:.2f}")
print(f"pytest-testinfra, same checks:         {theirs:7.3f} s ({open(sys.argv[5]).read().strip().splitlines()[-1]})")
print(f"speed-up:                              {theirs / ours:7.1f}x")
# The critical path: the longest chain of `needs` among the checks that ran,
# summing each check's duration (tomllib reads the profiles' `needs`).
import glob, tomllib
needs = {}
for path in glob.glob("health-checks/*.toml"):
    for c in tomllib.load(open(path, "rb")).get("check", []):
        needs[c["id"]] = c.get("needs", [])
ran = {r["id"]: r["duration_ms"] / 1000 for r in doc["validation_results"]}
memo = {}
def chain(i):
    if i not in memo:
        best = max(((chain(n), n) for n in needs.get(i, []) if n in ran), default=((0.0, []), None))
        memo[i] = (best[0][0] + ran[i], best[0][1] + [i])
    return memo[i]
length, path = max(chain(i) for i in ran)
print(f"  critical path ({' -> '.join(path)}): {length:.3f} s; phase / critical path {phase / length if length else 0:.2f} (goal <= 1.2)")
PY
