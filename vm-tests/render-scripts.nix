# Renders the VM tests' Python test scripts without nixpkgs: pkgs is a stub
# (derivations are store-path strings, runNixOSTest returns its argument), so
# the scripts can be syntax-checked (py_compile, pyflakes) on a machine that
# cannot build NixOS. scripts/check-nix.sh runs it when NIXPKGS_LIB is set:
#   nix-instantiate --eval --strict --json vm-tests/render-scripts.nix --arg lib 'import /path/to/nixpkgs/lib'
{ lib }:
let
  store = name: "/nix/store/00000000000000000000000000000000-${name}";
  pkgs = {
    inherit lib;
    runCommand = name: _env: _script: store name;
    writeText = name: _text: store name;
    openssl = store "openssl";
    python3 = store "python3";
    testers.runNixOSTest = test: test;
  };
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
