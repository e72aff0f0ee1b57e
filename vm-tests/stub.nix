# A stand-in for NixOS and nixpkgs, enough to evaluate our modules and the
# VM test nodes with nixpkgs' module system alone (no nixpkgs packages): the
# options our modules read or set on other NixOS modules are declared here
# as free-form attribute sets, and packages are derivation-shaped sets whose
# store paths are fake. Used by module-eval.nix, nodes-eval.nix and
# render-scripts.nix.
{ lib }:
let
  inherit (lib) mkOption types;
  store = name: "/nix/store/00000000000000000000000000000000-${name}";

  # An option holding a free-form attribute set, with some declared options.
  open =
    options:
    mkOption {
      type = types.submodule {
        freeformType = types.lazyAttrsOf types.anything;
        inherit options;
      };
      default = { };
    };
  flag = default: mkOption { type = types.bool; inherit default; };
  value = default: mkOption { inherit default; };
  fakePackage = name: {
    type = "derivation";
    inherit name;
    outPath = store name;
    meta.mainProgram = name;
  };

  pkgs = {
    inherit lib;
    # writeText keeps its text after the path, so tests can look inside.
    writeText = name: text: "${store name}:${text}";
    runCommand = name: _env: _script: store name;
    formats.toml = { }: {
      type = types.attrsOf types.anything;
      generate = name: _value: store name;
    };
    testers.runNixOSTest = test: test;
    dockerTools.buildImage = args: fakePackage "docker-image-${args.name}";
    pkgsStatic.busybox = fakePackage "busybox";
  }
  // lib.genAttrs [
    "spinup-smoke"
    "rave-agent"
    "coreutils"
    "nftables"
    "iproute2"
    "systemd"
    "openssl"
    "python3"
    "curl"
    "jq"
  ] fakePackage;

  # Declared at NixOS's granularity (services.gitlab is an option, services
  # is not), so that mkIf conditions reading services.rave-p6 do not recurse.
  nixosStub = {
    options = {
      assertions = mkOption {
        type = types.listOf types.anything;
        default = [ ];
      };
      networking = {
        firewall = open { enable = flag true; };
        nftables = open { enable = flag false; };
        hosts = open { };
        useDHCP = flag true;
      };
      services = {
        openssh = open {
          # NixOS's default is true: the module must turn it off.
          settings = open {
            PasswordAuthentication = flag true;
          };
          package = value (fakePackage "openssh");
        };
        postgresql = open {
          settings = open { port = value 5432; };
          dataDir = value "/var/lib/postgresql/17";
          package = value (fakePackage "postgresql");
        };
        gitlab = open { };
        gitlab-runner = open { };
        matrix-synapse = open { package = value (fakePackage "matrix-synapse"); };
        grafana = open { };
        prometheus = open { };
        nginx = open { };
      };
      systemd.services = open { };
      systemd.tmpfiles.rules = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      users.users = open { };
      users.groups = open { };
      environment.etc = open { };
      environment.systemPackages = mkOption {
        type = types.listOf types.anything;
        default = [ ];
      };
      security.pki = open { };
      virtualisation = open { };
    };
  };

  eval =
    modules:
    (lib.evalModules {
      modules = [
        nixosStub
        { _module.args = { inherit pkgs; }; }
      ]
      ++ modules;
    }).config;

  failedAssertions = cfg: map (a: a.message) (lib.filter (a: !a.assertion) cfg.assertions);
in
{
  inherit
    store
    open
    fakePackage
    pkgs
    nixosStub
    eval
    failedAssertions
    ;
}
