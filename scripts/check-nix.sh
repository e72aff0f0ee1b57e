#!/usr/bin/env bash
# Checks the Nix side of the project on a machine that has nix-instantiate
# but cannot fetch nixpkgs (so nothing here builds or boots NixOS):
#
#   nix-parse      every .nix file parses (nix-instantiate --parse)
#   facts-pure     nixos/facts.nix evaluates alone, and equals
#                  health-checks/rave-facts.json (scripts/gen-facts.sh --check)
#   facts-sane     the facts agree with themselves (ports, memory caps vs budget)
#   security-facts health-checks/security.toml uses the same ports and secret
#                  mode as the facts
#   nix-paths      every ./relative path in a .nix file exists
#   flake-lock     flake.lock: version 7, root node, every input declared in
#                  flake.nix locked with rev and narHash, every node reachable
#   flake-lock-nix Nix itself accepts flake.lock as up to date (offline), when
#                  the installed nix has flakes
#   module-eval    nixos/*.nix evaluate with the module system and give the
#                  facts' values (vm-tests/module-eval.nix; needs NIXPKGS_LIB)
#   nodes-eval     the VM test nodes evaluate and check what their tests rely
#                  on (vm-tests/nodes-eval.nix; needs NIXPKGS_LIB)
#   flake-eval     the flake's outputs evaluate with stubbed nixpkgs and crane
#                  (vm-tests/flake-eval.nix; needs NIXPKGS_LIB, FLAKE_UTILS_LIB)
#   vm-scripts     the VM tests' Python scripts compile and pass pyflakes
#                  (vm-tests/render-scripts.nix; needs NIXPKGS_LIB)
#   host-security  health-checks/security.toml against a real host in network
#                  and mount namespaces, locked down (passes) and weakened
#                  (fails exactly as it must); needs root, the validator
#                  (SPINUP_SMOKE, default target/debug/spinup-smoke) and SSHD
#   gitlab-ci      .gitlab-ci.yml is YAML with stages build/check/smoke/verify
#                  and the build, flake check, smoke (JUnit, matrix) and
#                  verify jobs; every spinup-smoke subcommand and flag a job
#                  uses exists in the CLI as built (SPINUP_SMOKE)
#
# Usage:
#   scripts/check-nix.sh              check this tree
#   scripts/check-nix.sh --self-test  prove the checks fail on broken copies
#   ROOT=DIR scripts/check-nix.sh     check another tree
# Environment: PYTHON (a python3 with PyYAML; default python3); optional
# NIXPKGS_LIB (a nixpkgs lib/ directory) and FLAKE_UTILS_LIB (flake-utils'
# lib.nix) enable the module-eval, nodes-eval, flake-eval and vm-scripts checks.
# Exit status: 0 all checks passed, 1 a check failed, 2 a tool is missing.
set -uo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="${ROOT:-$(cd "$script_dir/.." && pwd)}"
python="${PYTHON:-python3}"
failures=0

pass() { printf 'PASS  %-15s %s\n' "$1" "$2"; }
fail() { printf 'FAIL  %-15s %s\n' "$1" "$2"; failures=$((failures + 1)); }
skip() { printf 'SKIP  %-15s %s\n' "$1" "$2"; }

require_tools() {
  local missing=0
  if ! command -v nix-instantiate >/dev/null; then
    echo "check-nix.sh: nix-instantiate not found; install Nix (Debian: apt-get install -y nix-bin)" >&2
    missing=1
  fi
  if ! "$python" -c 'import yaml, tomllib' 2>/dev/null; then
    echo "check-nix.sh: $python lacks PyYAML or tomllib; use Python >= 3.11 with PyYAML (pip install pyyaml) and pass PYTHON=..." >&2
    missing=1
  fi
  [ "$missing" = 0 ] || exit 2
}

# The .nix files of the tree (git's list when it is a checkout, else find).
nix_files() {
  if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1 \
     && [ -z "${CHECK_NIX_NO_GIT:-}" ]; then
    git -C "$root" ls-files --cached --others --exclude-standard -- '*.nix' \
      | while read -r f; do [ -f "$root/$f" ] && echo "$f"; done
  else
    (cd "$root" && find . -name '*.nix' -not -path './target/*' -not -path './.git/*' | sed 's|^\./||' | sort)
  fi
}

check_parse() {
  local files count=0 bad=0 f out
  files="$(nix_files)"
  if [ -z "$files" ]; then fail nix-parse "no .nix files found under $root"; return; fi
  while read -r f; do
    count=$((count + 1))
    if ! out="$(nix-instantiate --readonly-mode --parse "$root/$f" 2>&1 >/dev/null)"; then
      fail nix-parse "$f does not parse: $(printf '%s' "$out" | head -3 | tr '\n' ' ')"
      bad=$((bad + 1))
    fi
  done <<< "$files"
  [ "$bad" = 0 ] && pass nix-parse "$count .nix files parse"
}

check_facts() {
  local out
  if out="$(ROOT="$root" PYTHON="$python" "$script_dir/gen-facts.sh" --check 2>&1)"; then
    pass facts-pure "nixos/facts.nix evaluates alone and equals health-checks/rave-facts.json"
  else
    fail facts-pure "$(printf '%s' "$out" | tail -15)"
  fi
}

# Python checks print "PASS|FAIL name message" lines; relay them.
run_python_check() {
  local out line status name msg
  out="$(cd "$root" && "$python" - "$@" 2>&1)" || true
  while IFS= read -r line; do
    [ -z "$line" ] && continue
    status="${line%% *}"; line="${line#* }"
    name="${line%% *}"; msg="${line#* }"
    case "$status" in
      PASS) pass "$name" "$msg" ;;
      FAIL) fail "$name" "$msg" ;;
      SKIP) skip "$name" "$msg" ;;
      *) fail python "unexpected output: $status $line" ;;
    esac
  done <<< "$out"
}

check_facts_and_security() {
  run_python_check <<'PY'
import json, tomllib

def check(name, problems, ok):
    if problems:
        for p in problems:
            print(f"FAIL {name} {p}")
    else:
        print(f"PASS {name} {ok}")

try:
    facts = json.load(open("health-checks/rave-facts.json"))
except Exception as e:
    print(f"FAIL facts-sane cannot read health-checks/rave-facts.json: {e}")
    raise SystemExit

problems = []
ports = facts["ports"]
if sorted(ports["allowed_tcp"]) != sorted([ports["ssh"], ports["https"]]):
    problems.append(f"ports.allowed_tcp {ports['allowed_tcp']} is not exactly [ports.ssh, ports.https]")
for name, port in facts["internal_ports"].items():
    if port in ports["allowed_tcp"]:
        problems.append(f"internal port {name}={port} must not be open to the outside")
safe = facts["budgets"]["safe"]
caps = sum(facts["memory_max_mib"].values())
if caps >= safe["memory_gib"] * 1024:
    problems.append(f"memory_max_mib caps sum to {caps} MiB, not below the SAFE budget of {safe['memory_gib']} GiB; lower a cap in nixos/facts.nix")
missing = sorted(set(facts["memory_max_mib"]) - set(facts["units"]))
if missing:
    problems.append(f"memory_max_mib names services without a unit in units: {missing}")
dbs = ",".join(sorted(facts["databases"]))
if sorted(facts["database_names"].split(",")) != sorted(facts["databases"]):
    problems.append(f"database_names '{facts['database_names']}' differs from the databases table ({dbs})")
if facts["databases"]["synapse"].get("collate") != "C":
    problems.append("Synapse needs its database with LC_COLLATE C (databases.synapse.collate)")
check("facts-sane", problems,
      f"ports {ports['allowed_tcp']}, memory caps {caps} MiB < {safe['memory_gib']} GiB, databases {dbs}")

problems = []
try:
    profile = tomllib.load(open("health-checks/security.toml", "rb"))
except Exception as e:
    print(f"FAIL security-facts cannot read health-checks/security.toml: {e}")
    raise SystemExit
checks = profile.get("check", [])
if not checks:
    problems.append("health-checks/security.toml has no [[check]]")
for c in checks:
    if c.get("phase") != "security":
        problems.append(f"check {c.get('id')} has phase {c.get('phase')!r}, expected 'security'")
port_checks = [c for c in checks if "ports" in c]
if not port_checks:
    problems.append("no check uses the ports probe")
def resolve(value):
    """A profile value: an exact ${facts.x} reference takes the fact's value."""
    if isinstance(value, str) and value.startswith("${facts.") and value.endswith("}") and value.count("${") == 1:
        node = facts
        for key in value[len("${facts."):-1].split("."):
            node = node.get(key) if isinstance(node, dict) else None
        return node
    return value
facts_file = profile.get("profile", {}).get("facts")
if facts_file != "rave-facts.json":
    problems.append(f"[profile] facts is {facts_file!r}; set facts = \"rave-facts.json\" so ${{facts.*}} resolve")
for c in port_checks:
    allowed = resolve(c["ports"].get("allowed", []))
    if not isinstance(allowed, list) or sorted(allowed) != sorted(ports["allowed_tcp"]):
        problems.append(f"{c['id']}: ports.allowed {c['ports'].get('allowed')} -> {allowed} differs from facts ports.allowed_tcp {ports['allowed_tcp']}")
file_checks = [c for c in checks if "file" in c]
if not file_checks:
    problems.append("no check uses the file probe (secret file modes)")
for c in file_checks:
    if resolve(c["file"].get("mode_max")) != facts["secrets"]["mode_max"]:
        problems.append(f"{c['id']}: file.mode_max {c['file'].get('mode_max')!r} differs from facts secrets.mode_max {facts['secrets']['mode_max']!r}")
sshd = [c for c in checks if "sshd" in c]
if not sshd:
    problems.append("no check uses the sshd probe (effective sshd configuration)")
for c in sshd:
    if c["sshd"].get("root_login", "no") != "no":
        problems.append(f"{c['id']}: sshd.root_login is {c['sshd']['root_login']!r}; a P6 host refuses root logins (\"no\")")
nft = [c for c in checks if "nftables" in c]
if not nft:
    problems.append("no check uses the nftables probe (input chain policy and ports)")
for c in nft:
    allowed = resolve(c["nftables"].get("allowed_tcp", []))
    if not isinstance(allowed, list) or sorted(allowed) != sorted(ports["allowed_tcp"]):
        problems.append(f"{c['id']}: nftables.allowed_tcp {c['nftables'].get('allowed_tcp')} -> {allowed} differs from facts ports.allowed_tcp {ports['allowed_tcp']}")
    for field, fact in (("family", "nft_family"), ("table", "nft_table"), ("chain", "input_chain")):
        if field in c["nftables"] and resolve(c["nftables"][field]) != facts["firewall"][fact]:
            problems.append(f"{c['id']}: nftables.{field} {c['nftables'][field]!r} differs from facts firewall.{fact} {facts['firewall'][fact]!r}")
# Every ${facts.x.y} reference must name a scalar in rave-facts.json.
import re
def flatten(value, prefix, out):
    if isinstance(value, dict):
        for k, v in value.items():
            flatten(v, f"{prefix}.{k}" if prefix else k, out)
    else:
        out[prefix] = value
flat = {}
flatten(facts, "facts", flat)
refs = sorted(set(re.findall(r"\$\{(facts\.[^}]+)\}", open("health-checks/security.toml").read())))
for ref in refs:
    if ref not in flat:
        problems.append(f"security.toml refers to ${{{ref}}}, which health-checks/rave-facts.json does not have")
    elif flat[ref] is None:
        problems.append(f"security.toml refers to ${{{ref}}}, which is null")
check("security-facts", problems,
      f"{len(checks)} security checks; ports, secret mode, sshd, nftables and {len(refs)} facts.* references agree with the facts")
PY
}

check_paths() {
  local -a files
  mapfile -t files < <(nix_files)
  run_python_check "${files[@]}" <<'PY'
import os, re, sys
problems = []
count = 0
for f in sys.argv[1:]:
    text = open(f).read()
    # drop comments so example paths in them are not checked
    text = "\n".join(line.split("#", 1)[0] if not line.lstrip().startswith("#") else "" for line in text.splitlines())
    for m in re.finditer(r"(maybeMissing\s+)?(\.\.?/[A-Za-z0-9._/-]*[A-Za-z0-9_-])", text):
        if m.group(1):
            continue
        count += 1
        path = os.path.normpath(os.path.join(os.path.dirname(f), m.group(2)))
        if not os.path.exists(path):
            problems.append(f"{f}: {m.group(2)} does not exist")
if problems:
    for p in problems:
        print(f"FAIL nix-paths {p}")
else:
    print(f"PASS nix-paths {count} relative paths in .nix files exist")
PY
}

check_flake_lock() {
  local inputs
  if ! inputs="$(nix-instantiate --readonly-mode --eval --strict --json \
      -E "(import $root/flake.nix).inputs" 2>&1)"; then
    fail flake-lock "cannot read the inputs of flake.nix: $inputs"
    return
  fi
  FLAKE_INPUTS="$inputs" run_python_check <<'PY'
import json, os
declared = json.loads(os.environ["FLAKE_INPUTS"])
problems = []
try:
    lock = json.load(open("flake.lock"))
except Exception as e:
    print(f"FAIL flake-lock flake.lock is not valid JSON: {e}")
    raise SystemExit
if lock.get("version") != 7:
    problems.append(f"version is {lock.get('version')!r}, expected 7")
nodes = lock.get("nodes", {})
root_name = lock.get("root")
if root_name not in nodes:
    problems.append(f"root node {root_name!r} is missing from nodes")
    root = {}
else:
    root = nodes[root_name]
root_inputs = root.get("inputs", {})
if sorted(root_inputs) != sorted(declared):
    problems.append(f"root inputs {sorted(root_inputs)} differ from flake.nix inputs {sorted(declared)}; "
                    "add the missing input's node to flake.lock (or run `nix flake lock` on a machine with network)")
# Walk every node reachable from root; each must be locked.
seen, todo = set(), [root_name]
while todo:
    name = todo.pop()
    if name in seen:
        continue
    seen.add(name)
    node = nodes.get(name)
    if node is None:
        problems.append(f"node {name!r} is referenced but missing")
        continue
    for ref in node.get("inputs", {}).values():
        target = ref if isinstance(ref, str) else (ref[0] if ref else None)
        if target is not None:
            todo.append(target)
    if name == root_name:
        continue
    locked = node.get("locked", {})
    for field in ("type", "rev", "narHash"):
        if not locked.get(field):
            problems.append(f"node {name!r} has no locked.{field}")
    rev = locked.get("rev", "")
    if rev and (len(rev) != 40 or any(c not in "0123456789abcdef" for c in rev)):
        problems.append(f"node {name!r}: locked.rev {rev!r} is not a 40-digit commit")
    if locked.get("narHash") and not locked["narHash"].startswith("sha256-"):
        problems.append(f"node {name!r}: narHash is not an SRI sha256 hash")
    if "original" not in node:
        problems.append(f"node {name!r} has no original")
for name, spec in declared.items():
    node = nodes.get(root_inputs.get(name, ""), {})
    if isinstance(spec, dict) and spec.get("flake") is False and node.get("flake") is not False:
        problems.append(f"input {name!r} is `flake = false` in flake.nix but not in flake.lock")
    url = spec.get("url", "") if isinstance(spec, dict) else ""
    orig = node.get("original", {})
    if url.startswith("github:") and orig:
        parts = url[len("github:"):].split("/")
        if [orig.get("owner"), orig.get("repo")] != parts[:2] or (len(parts) > 2 and orig.get("ref") != parts[2]):
            problems.append(f"input {name!r}: flake.lock original {orig} does not match url {url}")
unreachable = sorted(set(nodes) - seen)
if unreachable:
    problems.append(f"nodes not reachable from root: {unreachable}")
if problems:
    for p in problems:
        print(f"FAIL flake-lock {p}")
else:
    print(f"PASS flake-lock version 7; inputs {sorted(declared)} locked with rev and narHash; {len(seen) - 1} nodes")
PY
}

# Nix's own opinion: with --no-update-lock-file and --offline, `nix flake
# metadata` fails when the lock is missing an input or does not match.
check_flake_lock_with_nix() {
  local nix_cmd=(nix --extra-experimental-features nix-command --extra-experimental-features flakes)
  if ! command -v nix >/dev/null || ! "${nix_cmd[@]}" flake --help >/dev/null 2>&1; then
    skip flake-lock-nix "the installed nix has no flake support"
    return
  fi
  local copy out
  copy="$(mktemp -d)"
  cp "$root/flake.nix" "$root/flake.lock" "$copy/"
  if out="$(timeout 120 "${nix_cmd[@]}" flake metadata --offline --no-update-lock-file --json "path:$copy" 2>&1)"; then
    pass flake-lock-nix "nix $(nix --version | awk '{print $NF}') accepts flake.lock as up to date for flake.nix (offline)"
  else
    fail flake-lock-nix "nix rejects flake.lock: $(printf '%s' "$out" | grep -v '^{' | head -3 | tr '\n' ' ')"
  fi
  rm -rf "$copy"
}

# nixos/*.nix evaluated by the module system with foreign options stubbed
# (vm-tests/module-eval.nix). Needs nixpkgs' lib directory: NIXPKGS_LIB=DIR.
check_module_eval() {
  eval_expectations module-eval vm-tests/module-eval.nix "the evaluated modules"
  eval_expectations nodes-eval vm-tests/nodes-eval.nix "the VM test nodes"
}

# eval_expectations <check> <file> <what>: a file of `{ lib }:` returning
# "ok: ..." lines or throwing on the first unmet expectation.
eval_expectations() {
  local name="$1" file="$2" what="$3" lib_dir="${NIXPKGS_LIB:-}" out
  if [ -z "$lib_dir" ] || [ ! -f "$lib_dir/default.nix" ]; then
    skip "$name" "set NIXPKGS_LIB to a nixpkgs lib/ directory to evaluate $what"
    return
  fi
  if out="$(nix-instantiate --readonly-mode --eval --strict --json "$root/$file" \
      --arg lib "import $lib_dir" 2>&1)"; then
    pass "$name" "$(printf '%s' "$out" | "$python" -c 'import json,sys; print(len(json.load(sys.stdin)))') expectations on $what hold"
  else
    fail "$name" "$(printf '%s' "$out" | grep -m1 'error:' | cut -c1-400)"
  fi
}

# The flake's outputs with stubbed nixpkgs and crane (vm-tests/flake-eval.nix).
# Needs NIXPKGS_LIB and FLAKE_UTILS_LIB (flake-utils' lib.nix).
check_flake_eval() {
  local lib_dir="${NIXPKGS_LIB:-}" fu="${FLAKE_UTILS_LIB:-}" out
  if [ -z "$lib_dir" ] || [ -z "$fu" ] || [ ! -f "$fu" ]; then
    skip flake-eval "set NIXPKGS_LIB and FLAKE_UTILS_LIB (flake-utils' lib.nix) to evaluate the flake outputs"
    return
  fi
  if ! out="$(nix-instantiate --readonly-mode --eval --strict --json "$root/vm-tests/flake-eval.nix" \
      --arg lib "import $lib_dir" --arg flakeUtilsLib "import $fu" 2>&1)"; then
    fail flake-eval "$(printf '%s' "$out" | grep -m1 'error:' | cut -c1-400)"
    return
  fi
  # The gitlab-ci check compares the attributes the jobs build and run with these.
  flake_eval_json="$out"
  FLAKE_EVAL="$out" run_python_check <<'PY'
import json, os
o = json.loads(os.environ["FLAKE_EVAL"])
problems = []
for system, names in o["packages"].items():
    if not {"spinup-smoke", "default"} <= set(names):
        problems.append(f"packages.{system} lacks spinup-smoke/default: {names}")
if not o["apps"].endswith("/bin/spinup-smoke"):
    problems.append(f"apps default program is {o['apps']}")
crate = {"spinup-smoke", "spinup-smoke-clippy", "spinup-smoke-fmt", "spinup-smoke-nextest", "spinup-smoke-audit", "facts-json", "module-eval", "nodes-eval"}
vm = {"vm-minimal", "vm-full-stack", "vm-tamper", "vm-security-fails"}
if not crate | vm <= set(o["checksLinux"]):
    problems.append(f"checks.x86_64-linux lacks {sorted(crate | vm - set(o['checksLinux']))}")
if vm & set(o["checksDarwin"]):
    problems.append("VM tests must not be in the Darwin checks")
if "--deny warnings" not in o["clippyArgs"]:
    problems.append(f"clippy does not deny warnings: {o['clippyArgs']}")
if not o["depsShared"]:
    problems.append("clippy does not reuse the package's cargoArtifacts (buildDepsOnly)")
if not {"rave-p6", "spinup-smoke", "rave-p6-sops"} <= set(o["nixosModules"]):
    problems.append(f"nixosModules: {o['nixosModules']}")
for tool in ["postgresql", "python3", "nodejs", "prometheus", "nginx", "qemu", "openssl"]:
    if tool not in o["shellPackages"]:
        problems.append(f"devShells.default lacks {tool}")
if "share/spinup-smoke/health-checks" not in o["postInstall"]:
    problems.append("the package does not install the profiles under share/spinup-smoke")
if problems:
    for p in problems:
        print(f"FAIL flake-eval {p}")
else:
    print(f"PASS flake-eval outputs evaluate: {len(o['checksLinux'])} Linux checks, {len(o['checksDarwin'])} Darwin, modules {o['nixosModules']}")
PY
}

# The VM tests' Python scripts, rendered with a stub pkgs, must compile (and
# pass pyflakes when it is installed, as the NixOS test driver lints them).
check_vm_scripts() {
  local lib_dir="${NIXPKGS_LIB:-}" rendered
  if [ -z "$lib_dir" ] || [ ! -f "$lib_dir/default.nix" ]; then
    skip vm-scripts "set NIXPKGS_LIB to a nixpkgs lib/ directory to render the VM test scripts"
    return
  fi
  if ! rendered="$(nix-instantiate --readonly-mode --eval --strict --json "$root/vm-tests/render-scripts.nix" \
      --arg lib "import $lib_dir" 2>&1)"; then
    fail vm-scripts "$(printf '%s' "$rendered" | grep -m1 'error:' | cut -c1-400)"
    return
  fi
  RENDERED="$rendered" run_python_check <<'PY'
import json, os, subprocess, sys, tempfile
scripts = json.loads(os.environ["RENDERED"])
problems = []
try:
    import pyflakes  # noqa: F401
    have_pyflakes = True
except ImportError:
    have_pyflakes = False
with tempfile.TemporaryDirectory() as tmp:
    for name, text in sorted(scripts.items()):
        path = os.path.join(tmp, f"{name}.py")
        # The test driver defines `machine`; declare it for the linters.
        open(path, "w").write("from typing import Any\nmachine: Any = None\n" + text)
        try:
            compile(open(path).read(), path, "exec")
        except SyntaxError as e:
            problems.append(f"{name}: {e}")
            continue
        if have_pyflakes:
            r = subprocess.run([sys.executable, "-m", "pyflakes", path], capture_output=True, text=True)
            if r.returncode != 0:
                problems.append(f"{name}: pyflakes: {r.stdout.strip()}")
if problems:
    for p in problems:
        print(f"FAIL vm-scripts {p}")
else:
    print(f"PASS vm-scripts {len(scripts)} test scripts compile{' and pass pyflakes' if have_pyflakes else ' (pyflakes not installed)'}")
PY
}

# health-checks/security.toml against a real host in namespaces
# (vm-tests/namespace-security.sh): needs root, the validator binary
# (SPINUP_SMOKE or target/debug/spinup-smoke) and an sshd binary (SSHD).
check_host_security() {
  local validator="${SPINUP_SMOKE:-$root/target/debug/spinup-smoke}" sshd_bin="${SSHD:-$(command -v sshd || true)}" out
  if [ "$(id -u)" != 0 ] || [ ! -x "$validator" ] || [ -z "$sshd_bin" ] || [ ! -x "$sshd_bin" ] \
     || ! command -v nft >/dev/null || ! command -v unshare >/dev/null; then
    skip host-security "needs root, nft, unshare, the validator (SPINUP_SMOKE) and sshd (SSHD) to run security.toml in namespaces"
    return
  fi
  if out="$(SPINUP_SMOKE="$validator" SSHD="$sshd_bin" timeout 300 "$root/vm-tests/namespace-security.sh" 2>&1)"; then
    pass host-security "security.toml passes on a locked-down namespace host and fails exactly password auth + port 8080 on a weakened one"
  else
    fail host-security "$(printf '%s' "$out" | grep -E '^FAIL|namespace-security' | head -3 | tr '\n' ' ')"
  fi
}

flake_eval_json=""

check_gitlab_ci() {
  FLAKE_EVAL="$flake_eval_json" run_python_check <<'PY'
import yaml
problems = []
try:
    ci = yaml.safe_load(open(".gitlab-ci.yml"))
except Exception as e:
    print(f"FAIL gitlab-ci .gitlab-ci.yml is not valid YAML: {e}")
    raise SystemExit
if not isinstance(ci, dict):
    print("FAIL gitlab-ci .gitlab-ci.yml is not a mapping")
    raise SystemExit
stages = ci.get("stages", [])
for s in ("build", "check", "smoke", "verify"):
    if s not in stages:
        problems.append(f"stage {s!r} missing from stages {stages}")
if [s for s in stages if s in ("build", "check", "smoke", "verify")] != ["build", "check", "smoke", "verify"]:
    problems.append(f"stages must run build, check, smoke, verify in that order: {stages}")
reserved = {"stages", "variables", "default", "workflow", "include", "image", "services", "cache", "before_script", "after_script"}
jobs = {k: v for k, v in ci.items() if k not in reserved and not k.startswith(".") and isinstance(v, dict)}
def script(job):
    lines = []
    for key in ("before_script", "script"):
        val = job.get(key, [])
        lines += val if isinstance(val, list) else [val]
    return "\n".join(str(l) for l in lines)
def find(stage, needle):
    return [(n, j) for n, j in jobs.items() if j.get("stage") == stage and needle in script(j)]
for n, j in jobs.items():
    if j.get("stage") not in stages:
        problems.append(f"job {n!r} has stage {j.get('stage')!r}, not one of {stages}")
    if "script" not in j and "trigger" not in j:
        problems.append(f"job {n!r} has no script")
if not find("build", "nix build .#spinup-smoke"):
    problems.append("no build-stage job runs `nix build .#spinup-smoke`")
if not find("check", "nix flake check"):
    problems.append("no check-stage job runs `nix flake check`")
smoke = find("smoke", "nix run .#spinup-smoke -- run")
if not smoke:
    problems.append("no smoke-stage job runs `nix run .#spinup-smoke -- run`")
for n, j in smoke:
    s = script(j)
    for flag in ("--profile", "--target", "--key", "--out artifacts/"):
        if flag not in s:
            problems.append(f"smoke job {n!r} does not pass {flag}")
    art = j.get("artifacts", {})
    if not any(str(p).rstrip("/") == "artifacts" for p in art.get("paths", [])):
        problems.append(f"smoke job {n!r} does not archive artifacts/")
    junit = art.get("reports", {}).get("junit")
    junit = junit if isinstance(junit, list) else [junit]
    if not any(isinstance(p, str) and p.startswith("artifacts/") and p.endswith("junit.xml") for p in junit):
        problems.append(f"smoke job {n!r} does not report artifacts/*junit.xml through artifacts:reports:junit")
    if art.get("when") != "always":
        problems.append(f"smoke job {n!r} must archive artifacts `when: always` (failed runs need their transcript)")
matrix = [n for n, j in jobs.items()
          if any("TARGET" in m for m in (j.get("parallel", {}) or {}).get("matrix", []) if isinstance(m, dict))]
if not matrix:
    problems.append("no job has parallel:matrix over TARGET (fleet smoke)")
for n in matrix:
    if jobs[n].get("stage") != "smoke" or "${TARGET}" not in script(jobs[n]) and "$TARGET" not in script(jobs[n]):
        problems.append(f"matrix job {n!r} must be in stage smoke and use $TARGET")
verify = find("verify", "spinup-smoke verify")
if not verify:
    problems.append("no verify-stage job runs `spinup-smoke verify`")
for n, j in verify:
    s = script(j)
    if "--pubkey" not in s:
        problems.append(f"verify job {n!r} does not pass --pubkey")
    if "intoto" not in s.lower() and "dsse" not in s.lower():
        problems.append(f"verify job {n!r} does not verify the DSSE envelopes (*.intoto.json)")
    if not j.get("needs") and not j.get("dependencies"):
        problems.append(f"verify job {n!r} does not name the smoke jobs it takes artifacts from (needs:)")
    if j.get("when") != "always":
        problems.append(f"verify job {n!r} must run `when: always` (a failed smoke job still archives a transcript to verify)")
for n, j in smoke:
    if "--image" not in script(j):
        problems.append(f"smoke job {n!r} does not pass --image when the job knows the image")
# Every spinup-smoke subcommand and flag the jobs use exists in the CLI as
# built (its --help), when the binary is at hand ($SPINUP_SMOKE).
import os, re, subprocess
binary = os.environ.get("SPINUP_SMOKE", "")
have_cli = bool(binary) and os.access(binary, os.X_OK)
if have_cli:
    helps = {}
    for n, j in jobs.items():
        for line in script(j).replace("\\\n", " ").splitlines():
            for m in re.finditer(r"spinup-smoke(?: --)? ([a-z]+)([^|;&\n]*)", line):
                sub, rest = m.group(1), m.group(2)
                if sub not in helps:
                    out = subprocess.run([binary, sub, "--help"], capture_output=True, text=True)
                    helps[sub] = out.stdout if out.returncode == 0 else None
                if helps[sub] is None:
                    problems.append(f"job {n!r} runs `spinup-smoke {sub}`, which the CLI does not have")
                    continue
                for flag in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", rest):
                    if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", helps[sub]):
                        problems.append(f"job {n!r} passes {flag} to `spinup-smoke {sub}`, which it does not take")
# Every flake attribute a job builds or runs (`nix build|run|path-info .#X`)
# exists in the flake's outputs, when they were evaluated (flake-eval).
flake_eval = os.environ.get("FLAKE_EVAL", "")
checked_attrs = set()
if flake_eval:
    import json
    outputs = json.loads(flake_eval)
    system = "x86_64-linux"
    packages = set(outputs["packages"].get(system, []))
    apps = set(outputs["appNames"])
    checks = set(outputs["checksLinux"])
    for n, j in jobs.items():
        for line in script(j).replace("\\\n", " ").splitlines():
            m = re.match(r"\s*(?:\S*/)?nix\s+(build|run|path-info|shell)\b(.*)", line)
            if not m:
                continue
            verb = m.group(1)
            for attr in re.findall(r"(?<![\w:])\.#([A-Za-z0-9_.-]+)", m.group(2)):
                checked_attrs.add(attr)
                parts = attr.split(".")
                if verb == "run":
                    ok = attr in apps or attr in packages
                    where = f"apps.{system} or packages.{system}"
                elif len(parts) == 1:
                    ok = attr in packages
                    where = f"packages.{system}"
                elif parts[0] == "checks" and len(parts) == 3:
                    ok = parts[1] == system and parts[2] in checks
                    where = f"checks.{system}"
                elif parts[0] == "packages" and len(parts) == 3:
                    ok = parts[1] == system and parts[2] in packages
                    where = f"packages.{system}"
                else:
                    ok, where = False, "the outputs flake-eval knows"
                if not ok:
                    problems.append(f"job {n!r} runs `nix {verb} .#{attr}`, which the flake does not have in {where}")
rules = [r.get("if", "") for r in (ci.get("workflow", {}) or {}).get("rules", []) if isinstance(r, dict)]
if not any("merge_request_event" in r for r in rules) or not any("CI_DEFAULT_BRANCH" in r for r in rules):
    problems.append("workflow:rules must run the pipeline on merge requests and on the default branch")
if problems:
    for p in problems:
        print(f"FAIL gitlab-ci {p}")
else:
    cli = "every spinup-smoke subcommand and flag exists" if have_cli else "CLI flags not checked: no SPINUP_SMOKE binary"
    attrs = f"flake attributes {sorted(checked_attrs)} exist" if flake_eval else "flake attributes not checked: no flake-eval"
    print(f"PASS gitlab-ci stages {stages}; jobs {sorted(jobs)}; {cli}; {attrs}")
PY
}

run_all_checks() {
  echo "check-nix.sh: checking $root"
  check_parse
  check_facts
  check_facts_and_security
  check_paths
  check_flake_lock
  check_flake_lock_with_nix
  check_module_eval
  check_flake_eval
  check_vm_scripts
  check_host_security
  check_gitlab_ci
  if [ "$failures" = 0 ]; then
    echo "check-nix.sh: all checks passed"
    return 0
  fi
  echo "check-nix.sh: $failures check(s) failed"
  return 1
}

# A copy of the files the checks read, without .git (so `find` lists files).
copy_tree() {
  local dest="$1"
  mkdir -p "$dest"
  (cd "$root" && tar cf - --exclude=./target --exclude=./.git --exclude=./artifacts \
     --exclude=./.demo --exclude=./.venv --exclude=./node_modules .) | (cd "$dest" && tar xf -)
}

# Each case breaks one thing in a fresh copy; the check must then fail, and
# name the broken check. The unbroken copy must pass first.
self_test() {
  local ok=1
  self_test_dir="$(mktemp -d)"
  trap 'rm -rf "$self_test_dir"' EXIT
  local work="$self_test_dir"

  expect() { # expect <case> <pass|fail> <check-name> <dir>
    local name="$1" want="$2" check="$3" dir="$4" out rc
    # host-security is skipped here (slow; its own two cases are its test).
    out="$(CHECK_NIX_NO_GIT=1 ROOT="$dir" PYTHON="$python" SPINUP_SMOKE="${case_cli:-/nonexistent}" "$script_dir/check-nix.sh" 2>&1)"; rc=$?
    if [ "$want" = pass ] && [ "$rc" = 0 ]; then
      echo "self-test: PASS  $name: checks pass"
    elif [ "$want" = fail ] && [ "$rc" = 1 ] && grep -q "^FAIL  $check " <<< "$out"; then
      echo "self-test: PASS  $name: check $check failed as it must: $(grep -m1 "^FAIL  $check " <<< "$out" | cut -c23- | cut -c1-110)"
    else
      echo "self-test: FAIL  $name: expected $check to $want, got exit $rc:"
      printf '%s\n' "$out" | sed 's/^/    /'
      ok=0
    fi
  }

  copy_tree "$work/intact"
  expect "intact copy" pass - "$work/intact"

  copy_tree "$work/facts"
  sed -i 's/^    https = 3002;/    https = 3003;/' "$work/facts/nixos/facts.nix"
  expect "facts.nix changed, JSON not regenerated" fail facts-pure "$work/facts"

  copy_tree "$work/impure"
  sed -i 's|^  database_names = .*|  database_names = builtins.readFile /etc/hostname;|' "$work/impure/nixos/facts.nix"
  expect "facts.nix reads a file" fail facts-pure "$work/impure"

  copy_tree "$work/parse"
  printf '{ broken = ;\n' > "$work/parse/nixos/broken.nix"
  expect "a .nix file with a syntax error" fail nix-parse "$work/parse"

  copy_tree "$work/lock"
  "$python" - "$work/lock/flake.lock" <<'PY'
import json, sys
lock = json.load(open(sys.argv[1]))
del lock["nodes"]["nixpkgs"]["locked"]["narHash"]
json.dump(lock, open(sys.argv[1], "w"), indent=2)
PY
  expect "flake.lock without nixpkgs narHash" fail flake-lock "$work/lock"

  copy_tree "$work/input"
  sed -i 's|^    flake-utils.url = .*|&\n    sops-nix.url = "github:Mic92/sops-nix";|' "$work/input/flake.nix"
  expect "flake.nix input missing from flake.lock" fail flake-lock "$work/input"

  copy_tree "$work/ports"
  sed -i 's/^allowed = .*/allowed = [22, 3002, 8080]/' "$work/ports/health-checks/security.toml"
  expect "security.toml allows a port the facts do not" fail security-facts "$work/ports"

  copy_tree "$work/nft"
  sed -i 's/^allowed_tcp = .*/allowed_tcp = [22, 3002, 8080]/' "$work/nft/health-checks/security.toml"
  expect "security.toml's firewall check admits a port the facts do not" fail security-facts "$work/nft"

  copy_tree "$work/memory"
  sed -i 's/^    gitlab = 2560;/    gitlab = 4096;/' "$work/memory/nixos/facts.nix"
  (ROOT="$work/memory" "$script_dir/gen-facts.sh" >/dev/null)
  expect "memory caps above the SAFE budget" fail facts-sane "$work/memory"

  if [ -n "${NIXPKGS_LIB:-}" ]; then
    copy_tree "$work/module"
    sed -i 's/allowedTCPPorts = facts.ports.allowed_tcp;/allowedTCPPorts = facts.ports.allowed_tcp ++ [ 80 ];/' \
      "$work/module/nixos/rave-p6.nix"
    expect "rave-p6.nix opens port 80" fail module-eval "$work/module"

    copy_tree "$work/nodes"
    "$python" - "$work/nodes/vm-tests/fixtures.nix" <<'PY'
import sys
path = sys.argv[1]
text = open(path).read()
open(path, "w").write(text.replace("        enable = true;\n        package = spinup-smoke;", "        package = spinup-smoke;", 1))
PY
    expect "VM test nodes without the validator unit" fail nodes-eval "$work/nodes"

    copy_tree "$work/standin"
    sed -i 's/oauth_provider = "gitlab";/oauth_provider = "generic_oauth";/' "$work/standin/vm-tests/full-stack.nix"
    expect "the full-stack target asks Grafana for the demo stand-in's login" fail nodes-eval "$work/standin"

    copy_tree "$work/token"
    sed -i 's|gitlab.accessToken.file = "/run/rave-test/gitlab_token";||' "$work/token/vm-tests/full-stack.nix"
    expect "the full-stack node registers no GitLab token for the checks" fail nodes-eval "$work/token"

    copy_tree "$work/script"
    sed -i 's/^    status = run_validator(machine)$/    status = run_validator(machine) +/' "$work/script/vm-tests/minimal.nix"
    expect "a VM test script with a Python syntax error" fail vm-scripts "$work/script"
  else
    echo "self-test: SKIP  module-eval, nodes-eval and vm-scripts cases (NIXPKGS_LIB not set)"
  fi

  copy_tree "$work/ci"
  "$python" - "$work/ci/.gitlab-ci.yml" <<'PY'
import sys, yaml
path = sys.argv[1]
ci = yaml.safe_load(open(path))
for name in [n for n, j in ci.items() if isinstance(j, dict) and j.get("stage") == "verify"]:
    del ci[name]
yaml.safe_dump(ci, open(path, "w"))
PY
  expect ".gitlab-ci.yml without the verify job" fail gitlab-ci "$work/ci"

  copy_tree "$work/ci-when"
  "$python" - "$work/ci-when/.gitlab-ci.yml" <<'PY'
import sys, yaml
path = sys.argv[1]
ci = yaml.safe_load(open(path))
for j in ci.values():
    if isinstance(j, dict) and j.get("stage") == "verify":
        j.pop("when", None)
yaml.safe_dump(ci, open(path, "w"))
PY
  expect ".gitlab-ci.yml whose verify job skips after a failed smoke job" fail gitlab-ci "$work/ci-when"

  if [ -n "${SPINUP_SMOKE:-}" ] && [ -x "${SPINUP_SMOKE}" ]; then
    copy_tree "$work/ci-flag"
    sed -i 's/--pubkey "\$SPINUP_PUBKEY_FILE"; then/--pubkey "$SPINUP_PUBKEY_FILE" --strict; then/' "$work/ci-flag/.gitlab-ci.yml"
    case_cli="$SPINUP_SMOKE" expect ".gitlab-ci.yml passing a flag the CLI does not take" fail gitlab-ci "$work/ci-flag"

    copy_tree "$work/ci-bundle"
    sed -i 's/ -- bundle "\$t" --key / -- bundle "$t" --signing-key /' "$work/ci-bundle/.gitlab-ci.yml"
    case_cli="$SPINUP_SMOKE" expect ".gitlab-ci.yml passing bundle a flag it does not take" fail gitlab-ci "$work/ci-bundle"
  fi

  if [ -n "${NIXPKGS_LIB:-}" ] && [ -n "${FLAKE_UTILS_LIB:-}" ]; then
    copy_tree "$work/ci-attr"
    sed -i 's/\.#checks\.x86_64-linux\.vm-full-stack/.#checks.x86_64-linux.vm-fullstack/' "$work/ci-attr/.gitlab-ci.yml"
    expect ".gitlab-ci.yml building a check the flake does not have" fail gitlab-ci "$work/ci-attr"
  fi

  copy_tree "$work/yaml"
  printf 'stages: [build\n' > "$work/yaml/.gitlab-ci.yml"
  expect ".gitlab-ci.yml that is not YAML" fail gitlab-ci "$work/yaml"

  if [ "$ok" = 1 ]; then
    echo "check-nix.sh --self-test: every broken copy was caught"
    return 0
  fi
  echo "check-nix.sh --self-test: FAILED (see above)"
  return 1
}

require_tools
case "${1:-}" in
  "") run_all_checks ;;
  --self-test) self_test ;;
  -h|--help) sed -n "2,/^set -uo/p" "$0" | sed "\$d" ;;
  *) echo "check-nix.sh: unknown argument '$1' (use --self-test or nothing)" >&2; exit 2 ;;
esac
