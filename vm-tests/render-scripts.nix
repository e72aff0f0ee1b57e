# Renders the VM tests' Python test scripts without nixpkgs: pkgs is a stub
# (derivations are store-path strings, runNixOSTest returns its argument), so
# the scripts can be syntax-checked (py_compile, pyflakes) on a machine that
# cannot build NixOS. scripts/check-nix.sh runs it when NIXPKGS_LIB is set:
#   nix-instantiate --eval --strict --json vm-tests/render-scripts.nix --arg lib 'import /path/to/nixpkgs/lib'
{ lib }:
let
  stub = import ./stub.nix { inherit lib; };
  inherit (stub) pkgs store;
  spinup-smoke = store "spinup-smoke";
  modules = {
    rave-p6 = ../nixos/rave-p6.nix;
    spinup-smoke = ../nixos/spinup-smoke.nix;
  };
  fixtures = import ./fixtures.nix { inherit pkgs spinup-smoke; };
  nodes.machine.services = {
    matrix-synapse.package = store "matrix-synapse";
    postgresql.package = store "postgresql";
  };
  render =
    name:
    let
      test = import (./. + "/${name}.nix") {
        inherit
          pkgs
          spinup-smoke
          modules
          fixtures
          ;
      };
    in
    if builtins.isFunction test.testScript then test.testScript { inherit nodes; } else test.testScript;
in
lib.genAttrs [
  "minimal"
  "full-stack"
  "tamper"
  "security-fails"
] render
