#!/usr/bin/env bash
# Writes health-checks/rave-facts.json from nixos/facts.nix (pretty-printed,
# keys sorted, trailing newline), or with --check fails when the committed
# JSON differs from what the Nix file evaluates to.
#
#   scripts/gen-facts.sh            regenerate the JSON
#   scripts/gen-facts.sh --check    compare only (CI)
#   ROOT=/some/copy scripts/gen-facts.sh --check   work on another tree
#
# Needs nix-instantiate (Debian: apt-get install nix-bin) and python3.
set -euo pipefail

root="${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
python="${PYTHON:-python3}"
facts_nix="$root/nixos/facts.nix"
facts_json="$root/health-checks/rave-facts.json"

mode="write"
case "${1:-}" in
  "") ;;
  --check) mode="check" ;;
  -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
  *) echo "gen-facts.sh: unknown argument '$1' (use --check or nothing)" >&2; exit 2 ;;
esac

if ! command -v nix-instantiate >/dev/null; then
  echo "gen-facts.sh: nix-instantiate not found; install Nix (Debian: apt-get install -y nix-bin)" >&2
  exit 2
fi

# The file is evaluated alone in an empty directory under restrict-eval: an
# import of another file, a <path> lookup or a fetch fails, which proves the
# facts are pure. --readonly-mode: no store writes, no daemon needed.
alone="$(mktemp -d)"
trap 'rm -rf "$alone"' EXIT
cp "$facts_nix" "$alone/facts.nix"
evaluated="$(nix-instantiate --readonly-mode --option restrict-eval true -I "facts=$alone" \
  --eval --strict --json "$alone/facts.nix")" || {
  echo "gen-facts.sh: $facts_nix does not evaluate on its own; fix the Nix error above (it must import nothing and fetch nothing)" >&2
  exit 1
}
pretty="$(printf '%s' "$evaluated" | "$python" -c '
import json, sys
print(json.dumps(json.load(sys.stdin), indent=2, sort_keys=True))
')"

if [ "$mode" = write ]; then
  printf '%s\n' "$pretty" > "$facts_json.tmp"
  mv "$facts_json.tmp" "$facts_json"
  echo "gen-facts.sh: wrote $facts_json"
  exit 0
fi

if [ ! -f "$facts_json" ]; then
  echo "gen-facts.sh: $facts_json is missing; run scripts/gen-facts.sh and commit it" >&2
  exit 1
fi
if ! diff -u --label "$facts_json (committed)" --label "nixos/facts.nix (evaluated)" \
     "$facts_json" <(printf '%s\n' "$pretty") >&2; then
  echo "gen-facts.sh: $facts_json differs from nixos/facts.nix; run scripts/gen-facts.sh and commit both" >&2
  exit 1
fi
echo "gen-facts.sh: $facts_json matches nixos/facts.nix"
