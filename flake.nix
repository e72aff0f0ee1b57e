{
  description = "spinup-smoke: proves a freshly built RAVE stack is ready and writes a signed boot transcript";

  # Keep this attribute set literal (no `let`, no function calls): it is read
  # with `nix-instantiate --eval` by scripts/check-nix.sh to compare the
  # declared inputs with flake.lock on machines without flakes.
  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
    crane.url = "github:ipetkov/crane";
    flake-utils.url = "github:numtide/flake-utils";
    advisory-db = {
      url = "github:rustsec/advisory-db";
      flake = false;
    };
  };

  outputs =
    {
      self,
      nixpkgs,
      crane,
      flake-utils,
      advisory-db,
      ...
    }:
    let
      # NixOS modules. `spinup-smoke` defaults its package to this flake's.
      nixosModules = {
        rave-p6 = ./nixos/rave-p6.nix;
        rave-p6-sops = ./nixos/rave-p6-sops.nix;
        rave-agent =
          { lib, pkgs, ... }:
          {
            imports = [ ./nixos/rave-agent.nix ];
            services.rave-agent.package =
              lib.mkDefault
                self.packages.${pkgs.stdenv.hostPlatform.system}.rave-agent;
          };
        spinup-smoke =
          { lib, pkgs, ... }:
          {
            imports = [ ./nixos/spinup-smoke.nix ];
            services.spinup-smoke.package =
              lib.mkDefault
                self.packages.${pkgs.stdenv.hostPlatform.system}.spinup-smoke;
          };
      };

      perSystem =
        system:
        let
          pkgs = nixpkgs.legacyPackages.${system};
          inherit (pkgs) lib;
          craneLib = crane.mkLib pkgs;

          # Rust sources plus what the tests and the installed package read:
          # check profiles, scenarios, test fixtures, demo assets, the sops
          # fixtures under nixos/secrets, the example target, the guest image
          # script and flake.lock (the config phase's own fixtures).
          # (cleanCargoSource would keep only .rs and .toml files.)
          root = ./.;
          src = lib.fileset.toSource {
            inherit root;
            fileset = lib.fileset.unions [
              ./Cargo.toml
              ./Cargo.lock
              ./flake.lock
              (craneLib.fileset.commonCargoSources root)
              ./health-checks
              (lib.fileset.maybeMissing ./scenarios)
              (lib.fileset.maybeMissing ./tests)
              (lib.fileset.maybeMissing ./demo)
              (lib.fileset.maybeMissing ./nixos/secrets)
              (lib.fileset.maybeMissing ./targets)
              (lib.fileset.maybeMissing ./scripts/build-guest-image.sh)
            ];
          };

          commonArgs = {
            inherit src;
            strictDeps = true;
            # reqwest and tokio-rustls use rustls with ring: no OpenSSL needed.
            nativeBuildInputs = [ ];
            buildInputs = [ ];
          };

          # Dependencies once; every check below reuses these artifacts.
          cargoArtifacts = craneLib.buildDepsOnly commonArgs;

          # The reference agent (agent/): matrix-sdk without default features.
          rave-agent = craneLib.buildPackage (
            commonArgs
            // {
              inherit cargoArtifacts;
              pname = "rave-agent";
              cargoExtraArgs = "--locked -p rave-agent";
              doCheck = false;
            }
          );

          spinup-smoke = craneLib.buildPackage (
            commonArgs
            // {
              inherit cargoArtifacts;
              # The validator alone: the workspace's other crate is the demo
              # stack (demo/, `spinup-smoke-demo`), which it does not need.
              cargoExtraArgs = "--locked -p spinup-smoke";
              # The test suite runs in checks.spinup-smoke-nextest.
              doCheck = false;
              postInstall = ''
                mkdir -p $out/share/spinup-smoke
                cp -r health-checks $out/share/spinup-smoke/health-checks
                if [ -d scenarios ]; then
                  cp -r scenarios $out/share/spinup-smoke/scenarios
                else
                  mkdir -p $out/share/spinup-smoke/scenarios
                fi
              '';
              meta = {
                description = "Phased readiness checks for a RAVE stack with signed boot transcripts";
                mainProgram = "spinup-smoke";
                license = with lib.licenses; [
                  mit
                  asl20
                ];
              };
            }
          );

          # health-checks/rave-facts.json must be nixos/facts.nix evaluated.
          # Compared at evaluation time, so a mismatch fails `nix flake check`
          # before anything builds.
          factsJson = builtins.fromJSON (builtins.readFile ./health-checks/rave-facts.json);
          factsNix = import ./nixos/facts.nix;
          facts-json =
            if factsJson == factsNix then
              pkgs.runCommand "spinup-smoke-facts-json" { } "touch $out"
            else
              throw ''
                health-checks/rave-facts.json differs from nixos/facts.nix.
                Fix: run scripts/gen-facts.sh and commit both files
                (or scripts/gen-facts.sh --check to see the difference).
              '';

          crateChecks = {
            inherit spinup-smoke facts-json;

            spinup-smoke-clippy = craneLib.cargoClippy (
              commonArgs
              // {
                inherit cargoArtifacts;
                cargoClippyExtraArgs = "--all-targets -- --deny warnings";
              }
            );

            spinup-smoke-fmt = craneLib.cargoFmt { inherit src; };

            spinup-smoke-audit = craneLib.cargoAudit { inherit src advisory-db; };

            # Tests that need a real PostgreSQL start one inside the build
            # sandbox (initdb + pg_ctl on a unix socket); openssl is there for
            # tests that cross-check signatures.
            spinup-smoke-nextest = craneLib.cargoNextest (
              commonArgs
              // {
                inherit cargoArtifacts;
                nativeCheckInputs = [
                  pkgs.postgresql
                  pkgs.openssl
                ];
                partitions = 1;
                partitionType = "count";
                cargoNextestPartitionsExtraArgs = "--no-tests=pass";
              }
            );
          };

          # Our NixOS modules evaluated with the module system alone (fast;
          # the VM tests below prove them against real NixOS).
          module-eval = pkgs.writeText "spinup-smoke-module-eval" (
            lib.concatLines (import ./vm-tests/module-eval.nix { inherit lib; })
          );
          nodes-eval = pkgs.writeText "spinup-smoke-nodes-eval" (
            lib.concatLines (import ./vm-tests/nodes-eval.nix { inherit lib; })
          );

          # NixOS VM tests (Linux only: they boot QEMU guests).
          vmTests = lib.optionalAttrs pkgs.stdenv.isLinux (
            import ./vm-tests {
              inherit pkgs spinup-smoke;
              modules = nixosModules;
            }
          );
        in
        {
          packages = {
            inherit spinup-smoke rave-agent;
            default = spinup-smoke;
          };

          apps =
            let
              app = {
                type = "app";
                program = "${spinup-smoke}/bin/spinup-smoke";
                meta.description = spinup-smoke.meta.description;
              };
            in
            {
              spinup-smoke = app;
              default = app;
            };

          checks = crateChecks // { inherit module-eval nodes-eval; } // vmTests;

          devShells.default = craneLib.devShell {
            # The crate checks' inputs (not the VM tests': they would pull in
            # whole NixOS systems).
            checks = crateChecks;
            packages = [
              pkgs.cargo-nextest
              pkgs.cargo-audit
              pkgs.postgresql
              pkgs.python3
              pkgs.nodejs
              pkgs.prometheus
              pkgs.nginx
              pkgs.qemu
              pkgs.openssl
            ];
          };

        };
    in
    flake-utils.lib.eachDefaultSystem perSystem
    // {
      inherit nixosModules;
      overlays.default = final: _prev: {
        spinup-smoke = self.packages.${final.stdenv.hostPlatform.system}.spinup-smoke;
      };
    };
}
