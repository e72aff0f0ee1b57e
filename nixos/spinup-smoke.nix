# services.spinup-smoke: runs the validator once the stack is up, as a
# oneshot unit, and leaves signed transcripts (JSON, DSSE) and JUnit XML in
# outDir:
#
#   spinup-smoke run --profile <dir>... --target <file> --key <file> --out <dir> [--phase <name>]...
#
# Start it again with `systemctl start spinup-smoke`; the unit fails when a
# check fails (exit 1), the profiles are wrong (2) or the run was aborted (3).
# It runs as root: sshd -T, nft and the secret-file checks need it.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  facts = import ./facts.nix;
  cfg = config.services.spinup-smoke;
  toml = pkgs.formats.toml { };
  targetFile = toml.generate "spinup-smoke-target.toml" cfg.target;
  phaseNames = [
    "config"
    "build"
    "boot"
    "services"
    "oidc"
    "agent"
    "sandbox"
    "e2e"
    "performance"
    "security"
  ];
  # The units to wait for: the whole stack (without the validator itself)
  # when rave-p6 runs it, only sshd and the firewall for a lockdown-only host.
  raveP6 = config.services.rave-p6 or { enable = false; };
  stackUnits =
    if !raveP6.enable then
      [ ]
    else if raveP6.stack.enable then
      lib.attrValues (removeAttrs facts.units [ "validator" ])
    else
      [
        facts.units.sshd
        facts.units.firewall
      ];
  # "${p}" copies a path literal into the store (toString would not).
  args = lib.concatMap (p: [
    "--profile"
    "${p}"
  ]) cfg.profiles
  ++ [
    "--target"
    targetFile
    "--key"
    cfg.signingKeyFile
    "--out"
    cfg.outDir
  ]
  ++ lib.concatMap (p: [
    "--phase"
    p
  ]) cfg.phases
  ++ lib.optionals (cfg.image != null) [
    "--image"
    cfg.image
  ]
  ++ cfg.extraArgs;
in
{
  options.services.spinup-smoke = {
    enable = lib.mkEnableOption "the spinup-smoke readiness validator (a oneshot run after the stack is up)";

    package = lib.mkPackageOption pkgs "spinup-smoke" { };

    profiles = lib.mkOption {
      type = lib.types.listOf (lib.types.either lib.types.path lib.types.str);
      default = [ "${cfg.package}/share/spinup-smoke/health-checks" ];
      defaultText = lib.literalExpression ''[ "''${cfg.package}/share/spinup-smoke/health-checks" ]'';
      description = "Profile files or directories, each passed as --profile.";
    };

    target = lib.mkOption {
      type = toml.type;
      default = { };
      example = lib.literalExpression ''
        {
          name = "rave-p6";
          rave_version = "P6-production";
          vars = { host = "127.0.0.1"; postgres.port = "5432"; };
          secrets.postgres_admin_password.file = "/run/secrets/postgres_admin_password";
        }
      '';
      description = ''
        The target file (name, rave_version, [vars], [secrets]) as Nix
        values; written to the store as TOML and passed as --target. Secrets
        are only ever references ({ file = ...; } or { env = ...; }): the file
        lands in the world-readable store.
      '';
    };

    signingKeyFile = lib.mkOption {
      type = lib.types.str;
      example = "/run/secrets/spinup_signing_key";
      description = "ed25519 private key that signs the transcripts (passed as --key). A runtime path, never a store path.";
    };

    outDir = lib.mkOption {
      type = lib.types.str;
      default = "/var/lib/spinup-smoke/artifacts";
      description = "Where transcripts, DSSE envelopes and JUnit XML are written (--out).";
    };

    phases = lib.mkOption {
      type = lib.types.listOf (lib.types.enum phaseNames);
      default = [ ];
      example = [
        "services"
        "security"
      ];
      description = "Phases to run (each passed as --phase); empty runs every phase.";
    };

    image = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      description = "Image whose digest the transcript is bound to (--image).";
    };

    extraArgs = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      example = [
        "--jobs"
        "4"
      ];
      description = "More arguments for `spinup-smoke run`.";
    };

    startOnBoot = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = "Run once at boot (wanted by multi-user.target); otherwise only on `systemctl start spinup-smoke`.";
    };

    after = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = stackUnits;
      defaultText = lib.literalMD "the RAVE P6 units from nixos/facts.nix when services.rave-p6 is enabled, else none";
      description = "Units that must have started before the validator runs.";
    };

    safeMode = lib.mkOption {
      type = lib.types.bool;
      default = raveP6.safeMode or true;
      defaultText = lib.literalExpression "config.services.rave-p6.safeMode, else true";
      description = "SAFE_MODE for the run: true checks the SAFE budgets of nixos/facts.nix, false the FULL_PIPE ones.";
    };

    timeoutSeconds = lib.mkOption {
      type = lib.types.ints.positive;
      default = 1800;
      description = "VALIDATION_TIMEOUT: the whole run's deadline; the unit is stopped 60 s after it.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = !(lib.hasPrefix builtins.storeDir cfg.signingKeyFile);
        message = "services.spinup-smoke.signingKeyFile is in the Nix store, which anyone can read; use a sops-nix secret path such as /run/secrets/spinup_signing_key.";
      }
    ];

    environment.systemPackages = [ cfg.package ];

    systemd.services.${lib.removeSuffix ".service" facts.units.validator} = {
      description = "spinup-smoke: prove the RAVE stack is ready and sign the transcript";
      wants = [ "network-online.target" ] ++ cfg.after;
      after = [ "network-online.target" ] ++ cfg.after;
      wantedBy = lib.optional cfg.startOnBoot "multi-user.target";
      # sshd -T, nft and ss/ip for the security checks, openssl for the TLS
      # checks' older protocol versions (min_version); systemctl for units.
      path = [
        cfg.package
        config.services.openssh.package
        pkgs.nftables
        pkgs.iproute2
        pkgs.openssl
        pkgs.systemd
        pkgs.coreutils
      ];
      environment = {
        VALIDATION_TIMEOUT = toString cfg.timeoutSeconds;
        SAFE_MODE = if cfg.safeMode then "1" else "0";
      };
      serviceConfig = {
        Type = "oneshot";
        ExecStartPre = "${pkgs.coreutils}/bin/mkdir -p ${lib.escapeShellArg cfg.outDir}";
        ExecStart = "${lib.getExe' cfg.package "spinup-smoke"} run ${lib.escapeShellArgs args}";
        TimeoutStartSec = cfg.timeoutSeconds + 60;
        UMask = "0077";
        PrivateTmp = true;
      };
    };
  };
}
