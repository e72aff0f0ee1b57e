# Evaluates the flake's outputs without nixpkgs or crane: nixpkgs is a stub
# whose packages are plain derivation-shaped sets, crane's functions return
# their arguments, flake-utils and nixpkgs' lib are real (passed in). Shows
# the output names (packages, apps, checks per system, devShells, modules,
# overlay), that clippy denies warnings and shares the dependency artifacts,
# that the facts check passes and the module evaluation check holds.
# lib.fileset needs Nix >= 2.14, so the source filter is not evaluated here.
#   nix-instantiate --eval --strict --json vm-tests/flake-eval.nix \
#     --arg lib 'import /path/to/nixpkgs/lib' --arg flakeUtilsLib 'import /path/to/flake-utils/lib.nix'
{ lib, flakeUtilsLib }:
let
  flake = import ../flake.nix;
  systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
  drv = name: extra: { type = "derivation"; inherit name; outPath = "/nix/store/00000000000000000000000000000000-${name}"; meta = { }; } // extra;
  mkPkgs = system: {
    inherit lib;
    stdenv = { isLinux = lib.hasSuffix "linux" system; hostPlatform.system = system; };
    runCommand = name: _: _: drv name { };
    writeText = name: text: drv name { inherit text; };
    testers.runNixOSTest = t: drv t.name { test = t; };
  } // lib.genAttrs [ "cargo-nextest" "cargo-audit" "postgresql" "python3" "nodejs" "prometheus" "nginx" "qemu" "openssl" ] (n: drv n { });
  crane.mkLib = pkgs: {
    fileset.commonCargoSources = root: lib.fileset.fileFilter (f: f.hasExt "rs" || f.hasExt "toml" || f.name == "Cargo.lock") root;
    buildDepsOnly = a: drv "deps" { args = a; };
    buildPackage = a: drv "spinup-smoke" { args = a; meta = a.meta; };
    cargoClippy = a: drv "clippy" { args = a; };
    cargoFmt = a: drv "fmt" { args = a; };
    cargoAudit = a: drv "audit" { args = a; };
    cargoNextest = a: drv "nextest" { args = a; };
    devShell = a: drv "shell" { args = a; };
  };
  inputs = {
    nixpkgs.legacyPackages = lib.genAttrs systems mkPkgs;
    inherit crane;
    flake-utils.lib = flakeUtilsLib { defaultSystems = systems; };
    advisory-db = "/nix/store/00000000000000000000000000000000-advisory-db";
  };
  self = flake.outputs (inputs // { inherit self; });
  x = "x86_64-linux";
  pkg = self.packages.${x}.spinup-smoke;
in
{
  packages = lib.mapAttrs (_: lib.attrNames) self.packages;
  apps = self.apps.${x}.default.program;
  appNames = lib.attrNames self.apps.${x};
  checksLinux = lib.attrNames self.checks.${x};
  checksDarwin = lib.attrNames self.checks.aarch64-darwin;
  devShells = lib.attrNames self.devShells.${x};
  shellKeys = lib.attrNames self.devShells.${x}.default; shellPackages = map (p: p.name) self.devShells.${x}.default.args.packages; shellChecks = lib.attrNames self.devShells.${x}.default.args.checks;
  nixosModules = lib.attrNames self.nixosModules;
  overlay = (self.overlays.default { stdenv.hostPlatform.system = x; } { }).spinup-smoke.name;
  clippyArgs = self.checks.${x}.spinup-smoke-clippy.args.cargoClippyExtraArgs;
  depsShared = self.checks.${x}.spinup-smoke-clippy.args.cargoArtifacts == pkg.args.cargoArtifacts;
  factsJson = self.checks.${x}.facts-json.name;
  moduleEval = self.checks.${x}.module-eval.text;
  nodesEval = self.checks.${x}.nodes-eval.text;
  vmTestNames = map (n: self.checks.${x}.${n}.test.name) [ "vm-minimal" "vm-full-stack" "vm-tamper" "vm-security-fails" ];
  postInstall = pkg.args.postInstall;
}
