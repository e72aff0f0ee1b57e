# Evaluates nixos/rave-p6.nix, nixos/rave-p6-sops.nix and
# nixos/spinup-smoke.nix with the nixpkgs module system (lib.evalModules)
# but without NixOS: the options those modules set on other NixOS modules
# (services.gitlab, systemd.services, ...) are declared here as free-form
# attribute sets, and pkgs is a stub whose derivations are plain strings.
#
# What it proves: our own options type-check, mkIf/mkMerge resolve, and the
# values the validator relies on come out of the facts (ports, MemoryMax per
# unit, Synapse's collation, the validator's command line, the sops wiring,
# the password-auth assertion). What it cannot prove: that NixOS accepts the
# foreign option names; the VM tests do that on a machine with nixpkgs.
#
# Needs only nixpkgs' lib directory, so it runs where nixpkgs cannot be
# fetched, given a copy of lib:
#   nix-instantiate --eval --strict --json vm-tests/module-eval.nix --arg lib 'import /path/to/nixpkgs/lib'
# and in the flake as checks.<system>.module-eval. Evaluates to a list of
# "ok: ..." lines, or throws naming the first failed expectation.
{ lib }:
let
  facts = import ../nixos/facts.nix;

  stub = import ./stub.nix { inherit lib; };
  inherit (stub) pkgs eval failedAssertions;
  inherit (lib) mkOption types;

  # A stand-in for sops-nix: every secret's path is /run/secrets/<name>.
  sopsStub =
    { config, ... }:
    {
      options.sops.secrets = mkOption {
        type = types.attrsOf (
          types.submodule (
            { name, ... }:
            {
              freeformType = types.lazyAttrsOf types.anything;
              options.path = mkOption {
                type = types.str;
                default = "/run/secrets-sops/${name}";
              };
            }
          )
        );
        default = { };
      };
    };

  stack = {
    imports = [
      ../nixos/rave-p6.nix
      ../nixos/spinup-smoke.nix
    ];
    services.rave-p6 = {
      enable = true;
      tls.certificate = "/etc/rave/cert.pem";
    };
    services.spinup-smoke = {
      enable = true;
      signingKeyFile = "/run/secrets/spinup_signing_key";
      phases = [
        "services"
        "security"
      ];
      target = {
        name = "rave-p6";
        vars.host = "127.0.0.1";
      };
    };
  };

  good = eval [ stack ];

  withPasswords = eval [
    stack
    { services.openssh.settings.PasswordAuthentication = lib.mkForce true; }
  ];
  withSops = eval [
    stack
    sopsStub
    ../nixos/rave-p6-sops.nix
  ];
  storeKey = eval [
    stack
    { services.spinup-smoke.signingKeyFile = lib.mkForce "/nix/store/00000000000000000000000000000000-key"; }
  ];

  # The agent and the validator on the stack, every secret from sops-nix.
  withAgent = eval [
    stack
    sopsStub
    ../nixos/rave-p6-sops.nix
    ../nixos/rave-agent.nix
    (
      { config, ... }:
      {
        sops.secrets.rave_agent_password.mode = "0400";
        sops.secrets.rave_agent_gitlab_token.mode = "0400";
        sops.secrets.spinup_signing_key.mode = "0400";
        services.rave-agent = {
          enable = true;
          package = pkgs.rave-agent;
          user = "@rave-agent:rave.local";
          passwordFile = config.sops.secrets.rave_agent_password.path;
          gitlabTokenFile = config.sops.secrets.rave_agent_gitlab_token.path;
          allowedUsers = [ "@operator:rave.local" ];
        };
        services.spinup-smoke.signingKeyFile = lib.mkForce config.sops.secrets.spinup_signing_key.path;
      }
    )
  ];
  agentUnit = withAgent.systemd.services.rave-agent;

  units = good.systemd.services;

  # The stack with a GitLab access token file: the token and runner units.
  withToken = eval [
    stack
    { services.rave-p6.gitlab.accessToken.file = "/run/secrets/gitlab_smoke_token"; }
  ];
  tokenUnits = withToken.systemd.services;
  unit = service: lib.removeSuffix ".service" facts.units.${service};
  validator = units.${unit "validator"};
  execStart = validator.serviceConfig.ExecStart;
  initialScript = good.services.postgresql.initialScript;

  expectations = [
    {
      what = "no assertion fails in the stack configuration";
      ok = failedAssertions good == [ ];
      found = failedAssertions good;
    }
    {
      what = "the firewall opens exactly ports ${toString facts.ports.allowed_tcp} on nftables";
      ok =
        good.networking.firewall.allowedTCPPorts == facts.ports.allowed_tcp
        && good.networking.nftables.enable
        && good.networking.firewall.enable;
      found = good.networking.firewall;
    }
    {
      what = "sshd: no passwords, no root login, port ${toString facts.ports.ssh}";
      ok =
        !good.services.openssh.settings.PasswordAuthentication
        && good.services.openssh.settings.PermitRootLogin == "no"
        && good.services.openssh.ports == [ facts.ports.ssh ];
      found = good.services.openssh.settings;
    }
    {
      what = "an assertion refuses password logins forced back on";
      ok = lib.any (lib.hasInfix "forbids ssh password logins") (failedAssertions withPasswords);
      found = failedAssertions withPasswords;
    }
    {
      what = "SAFE mode sets MemoryMax on every unit of facts.memory_max_mib";
      ok = lib.all (s: units.${unit s}.serviceConfig.MemoryMax == "${toString facts.memory_max_mib.${s}}M") (
        lib.attrNames facts.memory_max_mib
      );
      found = lib.mapAttrs (s: _: units.${unit s}.serviceConfig.MemoryMax or null) facts.memory_max_mib;
    }
    {
      what = "FULL_PIPE mode (safeMode = false) sets no MemoryMax and runs the validator with SAFE_MODE=0";
      ok =
        let
          full = eval [
            stack
            { services.rave-p6.safeMode = false; }
          ];
        in
        lib.all (s: !(full.systemd.services.${unit s}.serviceConfig or { }) ? MemoryMax) (
          lib.attrNames facts.memory_max_mib
        )
        && full.systemd.services.${unit "validator"}.environment.SAFE_MODE == "0"
        && validator.environment.SAFE_MODE == "1";
      found = null;
    }
    {
      what = "Synapse's database is created with LC_COLLATE 'C', owned by ${facts.databases.synapse.owner}";
      ok =
        lib.hasInfix "LC_COLLATE = 'C'" initialScript
        && lib.hasInfix ''WITH OWNER "${facts.databases.synapse.owner}"'' initialScript;
      found = initialScript;
    }
    {
      what = "Synapse: registration closed, no federation, loopback listeners";
      ok =
        let
          s = good.services.matrix-synapse.settings;
        in
        !s.enable_registration
        && s.federation_domain_whitelist == [ ]
        && lib.all (l: l.bind_addresses == [ "127.0.0.1" ]) s.listeners
        && !(lib.any (l: lib.any (r: lib.elem "federation" r.names) l.resources) s.listeners);
      found = good.services.matrix-synapse.settings.listeners;
    }
    {
      what = "internal services bind loopback only";
      ok =
        good.services.prometheus.listenAddress == "127.0.0.1"
        && good.services.grafana.settings.server.http_addr == "127.0.0.1"
        && !good.services.postgresql.enableTCPIP;
      found = null;
    }
    {
      what = "nginx listens on ${toString facts.ports.https} only, with TLS, no http server or redirect";
      ok =
        let
          vhost = good.services.nginx.virtualHosts.${good.services.rave-p6.domain};
        in
        lib.all (l: l.port == facts.ports.https && l.ssl) vhost.listen
        && vhost.onlySSL
        && !(vhost.forceSSL or false)
        && !(vhost.addSSL or false)
        && vhost.sslCertificateKey == "${facts.secrets.dir}/tls_key";
      found = good.services.nginx.virtualHosts.${good.services.rave-p6.domain}.listen;
    }
    {
      what = "secrets default to ${facts.secrets.dir}/<name> for every secret in the facts";
      ok = lib.all (n: good.services.rave-p6.secrets.${n} == "${facts.secrets.dir}/${n}") (
        lib.attrNames facts.secrets.files
      );
      found = good.services.rave-p6.secrets;
    }
    {
      what = "rave-p6-sops.nix points every secret at config.sops.secrets.<name>.path with the facts' owner";
      ok = lib.all (
        n:
        withSops.services.rave-p6.secrets.${n} == "/run/secrets-sops/${n}"
        && withSops.sops.secrets.${n}.owner == facts.secrets.files.${n}
        && withSops.sops.secrets.${n}.mode == "0400"
      ) (lib.attrNames facts.secrets.files);
      found = withSops.services.rave-p6.secrets;
    }
    {
      what = "the validator unit runs `spinup-smoke run` with profile, target, key, out dir and phases";
      ok =
        lib.hasPrefix "/nix/store/00000000000000000000000000000000-spinup-smoke/bin/spinup-smoke run " execStart
        && lib.hasInfix "--profile /nix/store/00000000000000000000000000000000-spinup-smoke/share/spinup-smoke/health-checks" execStart
        && lib.hasInfix "--target /nix/store/00000000000000000000000000000000-spinup-smoke-target.toml" execStart
        && lib.hasInfix "--key /run/secrets/spinup_signing_key" execStart
        && lib.hasInfix "--out /var/lib/spinup-smoke/artifacts" execStart
        && lib.hasInfix "--phase services --phase security" execStart
        && validator.serviceConfig.Type == "oneshot";
      found = execStart;
    }
    {
      what = "the validator starts after every stack unit of the facts";
      ok = lib.all (u: lib.elem u validator.after) (
        lib.attrValues (removeAttrs facts.units [ "validator" ])
      );
      found = validator.after;
    }
    {
      what = "a signing key in the Nix store is refused";
      ok = lib.any (lib.hasInfix "signingKeyFile is in the Nix store") (failedAssertions storeKey);
      found = failedAssertions storeKey;
    }
    {
      what = "the OAuth registration runs as gitlab and gets the client secrets as credentials";
      ok =
        let
          unit = units.rave-p6-oauth-apps.serviceConfig;
        in
        unit.User == facts.secrets.files.gitlab_secret
        && unit.LoadCredential == [
          "synapse-client-secret:${facts.secrets.dir}/synapse_oidc_client_secret"
          "grafana-client-secret:${facts.secrets.dir}/grafana_oauth_client_secret"
        ]
        && !(lib.hasInfix facts.secrets.dir unit.ExecStart);
      found = units.rave-p6-oauth-apps.serviceConfig;
    }
    {
      what = "an access token file registers the token through gitlab-rails as gitlab, the value a credential, never on a command line";
      ok =
        let
          unit = tokenUnits.rave-p6-gitlab-access-token.serviceConfig;
        in
        unit.User == facts.secrets.files.gitlab_secret
        && unit.LoadCredential == [ "access-token:/run/secrets/gitlab_smoke_token" ]
        && lib.hasInfix "gitlab-rails runner " unit.ExecStart
        && !(lib.hasInfix "gitlab_smoke_token" unit.ExecStart)
        && lib.elem facts.units.gitlab tokenUnits.rave-p6-gitlab-access-token.requires
        && failedAssertions withToken == [ ];
      found = tokenUnits.rave-p6-gitlab-access-token or null;
    }
    {
      what = "with the token, an instance runner is registered through the API and gitlab-runner runs it on podman's socket";
      ok =
        let
          reg = tokenUnits.rave-p6-gitlab-runner-registration;
          runner = withToken.services.gitlab-runner;
        in
        lib.hasInfix "/api/v4/user/runners" reg.script
        && lib.hasInfix "runner_type=instance_type" reg.script
        && reg.serviceConfig.LoadCredential == [ "access-token:/run/secrets/gitlab_smoke_token" ]
        && lib.elem "gitlab-runner.service" reg.requiredBy
        && runner.enable
        && runner.services.rave-p6.authenticationTokenConfigFile == "/var/lib/rave-p6-gitlab-runner/registration.env"
        && runner.services.rave-p6.executor == "docker"
        && lib.elem "unix:///run/podman/podman.sock" runner.services.rave-p6.registrationFlags
        && lib.elem "podman.socket" tokenUnits.gitlab-runner.requires;
      found = withToken.services.gitlab-runner or null;
    }
    {
      what = "without an access token file no token, runner registration or gitlab-runner is set up";
      ok =
        !(units ? rave-p6-gitlab-access-token)
        && !(units ? rave-p6-gitlab-runner-registration)
        && !(good.services.gitlab-runner.enable or false);
      found = good.services.gitlab-runner or null;
    }
    {
      what = "a runner without an access token is refused";
      ok = lib.any (lib.hasInfix "runner.enable needs services.rave-p6.gitlab.accessToken.file") (
        failedAssertions (eval [
          stack
          { services.rave-p6.gitlab.runner.enable = true; }
        ])
      );
      found = null;
    }
    {
      what = "stack.enable = false keeps the lockdown and runs no service";
      ok =
        let
          host = eval [
            stack
            { services.rave-p6.stack.enable = false; }
          ];
        in
        host.networking.firewall.allowedTCPPorts == facts.ports.allowed_tcp
        && !host.services.openssh.settings.PasswordAuthentication
        && !(host.services.gitlab.enable or false)
        && !(host.services.postgresql.enable or false)
        && !(host.systemd.services ? rave-p6-oauth-apps)
        && failedAssertions host == [ ];
      found = null;
    }
    {
      what = "rave-agent runs on the stack with its password and GitLab token from sops-nix as systemd credentials, never on its command line";
      ok =
        agentUnit.serviceConfig.LoadCredential == [
          "password:/run/secrets-sops/rave_agent_password"
          "gitlab-token:/run/secrets-sops/rave_agent_gitlab_token"
        ]
        && lib.hasPrefix "${pkgs.rave-agent}/bin/rave-agent --config " agentUnit.serviceConfig.ExecStart
        && !(lib.hasInfix "secrets" agentUnit.serviceConfig.ExecStart)
        && agentUnit.serviceConfig.DynamicUser
        && lib.elem "matrix-synapse.service" agentUnit.after
        && failedAssertions withAgent == [ ];
      found = agentUnit.serviceConfig;
    }
    {
      what = "the validator's unit signs with the key sops-nix decrypts, next to the agent";
      ok = lib.hasInfix "/run/secrets-sops/spinup_signing_key" (
        builtins.toJSON withAgent.systemd.services.${unit "validator"}
      );
      found = withAgent.systemd.services.${unit "validator"}.serviceConfig or null;
    }
    {
      what = "the stack without a TLS certificate is refused";
      ok = lib.any (lib.hasInfix "tls.certificate is not set") (
        failedAssertions (eval [
          stack
          { services.rave-p6.tls.certificate = lib.mkForce null; }
        ])
      );
      found = null;
    }
  ];

  check =
    e:
    if e.ok then
      "ok: ${e.what}"
    else
      throw "module-eval: expected ${e.what}; found ${builtins.toJSON e.found}";
in
map check expectations
