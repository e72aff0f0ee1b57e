# services.rave-agent: the reference chat-ops agent (agent/, the binary
# rave-agent) on a RAVE host. It logs in to the host's Synapse, accepts
# invites from `allowedUsers`, and obeys their `!rave` commands through the
# GitLab API (README.md, "Agent contract"); scenarios/agent.toml holds it to
# that contract.
#
# Secrets are files (sops-nix or agenix paths), handed to the unit with
# systemd's LoadCredential, never in the store or on the command line.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.rave-agent;
  toml = pkgs.formats.toml { };
  configFile = toml.generate "rave-agent.toml" {
    homeserver = cfg.homeserver;
    user = cfg.user;
    password_file = "/run/credentials/rave-agent.service/password";
    allowed_users = cfg.allowedUsers;
    gitlab_url = cfg.gitlabUrl;
    gitlab_token_file = "/run/credentials/rave-agent.service/gitlab-token";
  };
in
{
  options.services.rave-agent = {
    enable = lib.mkEnableOption "rave-agent, the RAVE chat-ops agent over Matrix";

    package = lib.mkOption {
      type = lib.types.package;
      description = "The package that holds bin/rave-agent (this flake's `rave-agent`).";
    };

    homeserver = lib.mkOption {
      type = lib.types.str;
      default = "http://127.0.0.1:8008";
      description = "The homeserver's client API; Synapse's loopback listener on a RAVE host.";
    };

    user = lib.mkOption {
      type = lib.types.str;
      example = "@rave-agent:rave.local";
      description = "The agent's full Matrix user id (registered beforehand).";
    };

    passwordFile = lib.mkOption {
      type = lib.types.path;
      example = "/run/secrets/rave-agent-password";
      description = "A file holding the agent's Matrix password.";
    };

    allowedUsers = lib.mkOption {
      type = lib.types.nonEmptyListOf lib.types.str;
      example = [ "@operator:rave.local" ];
      description = "Users whose commands the agent obeys and whose invites it accepts; everyone else is refused.";
    };

    gitlabUrl = lib.mkOption {
      type = lib.types.str;
      default = "http://127.0.0.1:8929";
      description = "The GitLab instance the agent acts on.";
    };

    gitlabTokenFile = lib.mkOption {
      type = lib.types.path;
      example = "/run/secrets/rave-agent-gitlab-token";
      description = "A file holding a GitLab token with the `api` scope.";
    };
  };

  config = lib.mkIf cfg.enable {
    systemd.services.rave-agent = {
      description = "rave-agent: RAVE chat-ops over Matrix";
      wantedBy = [ "multi-user.target" ];
      after = [
        "network-online.target"
        "matrix-synapse.service"
        "gitlab.service"
      ];
      wants = [ "network-online.target" ];
      serviceConfig = {
        ExecStartPre = "${cfg.package}/bin/rave-agent --check-config ${configFile}";
        ExecStart = "${cfg.package}/bin/rave-agent --config ${configFile}";
        LoadCredential = [
          "password:${cfg.passwordFile}"
          "gitlab-token:${cfg.gitlabTokenFile}"
        ];
        # It reconnects by itself; a crash restarts it.
        Restart = "always";
        RestartSec = 5;
        DynamicUser = true;
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectControlGroups = true;
        RestrictAddressFamilies = [
          "AF_INET"
          "AF_INET6"
          "AF_UNIX"
        ];
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        SystemCallArchitectures = "native";
        MemoryMax = "256M";
      };
    };
  };
}
