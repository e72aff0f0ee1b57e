# The RAVE P6 stack as one NixOS module: PostgreSQL (gitlab, synapse,
# grafana databases), GitLab CE as the OpenID provider, Matrix Synapse
# (federation off, registration closed, SSO through GitLab), Grafana (GitLab
# OAuth), Prometheus, and nginx as the only public front (TLS on 3002).
# The host is locked down: nftables default-drop with 22 and 3002 open, sshd
# with keys only and no root login.
#
# Ports, unit names, database names and owners, secret owners and the SAFE
# mode memory caps come from ./facts.nix, the file the validator's checks
# read too (health-checks/rave-facts.json), so the two cannot drift apart.
#
# Secrets are file paths (services.rave-p6.secrets.<name>), by default
# /run/secrets/<name> where sops-nix puts them; ./rave-p6-sops.nix wires
# them to config.sops.secrets.<name>.path. Without sops-nix (tests), any
# files with the right owners and modes will do.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  facts = import ./facts.nix;
  cfg = config.services.rave-p6;
  secrets = cfg.secrets;
  baseUrl = "https://${cfg.domain}:${toString facts.ports.https}";
  unitName = service: lib.removeSuffix ".service" facts.units.${service};
  internal = facts.internal_ports;
in
{
  options.services.rave-p6 = {
    enable = lib.mkEnableOption "the RAVE P6 stack (GitLab, Synapse, Grafana, Prometheus, PostgreSQL behind nginx)";

    domain = lib.mkOption {
      type = lib.types.str;
      default = "rave.local";
      description = "Host name of the TLS front; GitLab, Synapse and Grafana are served under https://<domain>:${toString facts.ports.https}.";
    };

    stack.enable = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = ''
        Run the services. false keeps only the host lockdown (nftables
        firewall with ${toString facts.ports.allowed_tcp} open, sshd with keys only and no root
        login, /etc/hosts entry): for bastions and the minimal VM test.
      '';
    };

    safeMode = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = ''
        SAFE mode: cap each service's memory with systemd MemoryMax (the
        caps in nixos/facts.nix sum to less than the ${toString facts.budgets.safe.memory_gib} GiB SAFE budget)
        and run GitLab with fewer workers. false is FULL_PIPE mode.
      '';
    };

    tls = {
      certificate = lib.mkOption {
        type = lib.types.nullOr lib.types.path;
        default = null;
        description = "PEM certificate chain of the TLS front (public, may live in the store). Required with stack.enable.";
      };
      caFile = lib.mkOption {
        type = lib.types.nullOr lib.types.path;
        default = null;
        description = "CA bundle Synapse and Grafana trust when they call GitLab over https (set it for a private CA).";
      };
    };

    oidc = {
      synapseClientId = lib.mkOption {
        type = lib.types.str;
        default = "rave-synapse";
        description = "OAuth application id of Synapse in GitLab.";
      };
      grafanaClientId = lib.mkOption {
        type = lib.types.str;
        default = "rave-grafana";
        description = "OAuth application id of Grafana in GitLab.";
      };
    };

    gitlab = {
      accessToken = {
        file = lib.mkOption {
          type = lib.types.nullOr lib.types.str;
          default = null;
          example = "/run/secrets/gitlab_smoke_token";
          description = ''
            File holding a personal access token (at least 20 characters)
            that a oneshot registers at boot for GitLab's root user, through
            gitlab-rails, with the scopes below: the validator's
            `gitlab_token` (the runner list needs an administrator) and the
            runner registration's. The value never leaves the file: the unit
            reads it as a systemd credential. null registers none (and no
            runner).
          '';
        };
        scopes = lib.mkOption {
          type = lib.types.listOf lib.types.str;
          default = [
            "read_api"
            "create_runner"
          ];
          description = "Scopes of the registered token: read_api for the validator's checks, create_runner for the runner registration.";
        };
      };
      runner.enable = lib.mkOption {
        type = lib.types.bool;
        default = cfg.gitlab.accessToken.file != null;
        defaultText = lib.literalExpression "config.services.rave-p6.gitlab.accessToken.file != null";
        description = ''
          Register an instance runner (POST /api/v4/user/runners with the
          access token above) and run gitlab-runner with it: the docker
          executor on podman's Docker API socket.
        '';
      };
    };

    secrets = lib.mapAttrs (
      name: owner:
      lib.mkOption {
        type = lib.types.str;
        default = "${facts.secrets.dir}/${name}";
        description = "Path of the secret file `${name}` (owned by ${owner}, mode ${facts.secrets.mode_max} or stricter).";
      }
    ) facts.secrets.files;
  };

  config = lib.mkIf cfg.enable (
    lib.mkMerge [
      {
        assertions = [
          {
            assertion = config.networking.firewall.enable && config.networking.nftables.enable;
            message = "services.rave-p6 needs the nftables firewall (networking.firewall.enable and networking.nftables.enable).";
          }
          {
            assertion = !cfg.stack.enable || cfg.tls.certificate != null;
            message = "services.rave-p6.tls.certificate is not set; give the PEM certificate chain of the TLS front on port ${toString facts.ports.https}.";
          }
          {
            assertion = !cfg.gitlab.runner.enable || cfg.gitlab.accessToken.file != null;
            message = "services.rave-p6.gitlab.runner.enable needs services.rave-p6.gitlab.accessToken.file: the runner is registered with that token.";
          }
          {
            assertion = !config.services.openssh.settings.PasswordAuthentication;
            message = "services.rave-p6 forbids ssh password logins: remove services.openssh.settings.PasswordAuthentication = true.";
          }
        ];

        # Firewall: nftables, default drop on input, only ssh and the front.
        networking.nftables.enable = true;
        networking.firewall = {
          enable = true;
          allowedTCPPorts = facts.ports.allowed_tcp;
          allowedUDPPorts = [ ];
        };
        networking.hosts."127.0.0.1" = [ cfg.domain ];

        services.openssh = {
          enable = true;
          ports = [ facts.ports.ssh ];
          # The port is opened above, with the others.
          openFirewall = false;
          settings = {
            PasswordAuthentication = false;
            KbdInteractiveAuthentication = false;
            PermitRootLogin = "no";
            # Modern algorithms only (a subset of what the security phase's
            # sshd check allows, docs/checks.md): NixOS's default key
            # exchange also offers finite-field Diffie-Hellman group exchange.
            KexAlgorithms = [
              "sntrup761x25519-sha512@openssh.com"
              "curve25519-sha256"
              "curve25519-sha256@libssh.org"
            ];
            Ciphers = [
              "chacha20-poly1305@openssh.com"
              "aes256-gcm@openssh.com"
              "aes128-gcm@openssh.com"
              "aes256-ctr"
              "aes192-ctr"
              "aes128-ctr"
            ];
            Macs = [
              "hmac-sha2-512-etm@openssh.com"
              "hmac-sha2-256-etm@openssh.com"
              "umac-128-etm@openssh.com"
            ];
          };
        };
      }

      (lib.mkIf cfg.stack.enable {

        # The container engine of the GitLab runner's docker executor:
        # podman answering the Docker API on a Unix socket only
        # (/run/podman/podman.sock, socket-activated; no TCP port opens).
        # health-checks/containers.toml checks it (phase sandbox).
        virtualisation.podman = {
          enable = true;
          dockerSocket.enable = true;
        };

        # PostgreSQL: the unix socket and loopback (enableTCPIP = false keeps
        # it off the network; the validator logs in over 127.0.0.1, the
        # services over the socket). Each database is owned by the role of
        # the same name; Synapse's is created with LC_COLLATE C on first start
        # (Synapse refuses other collations), and the OS user matrix-synapse
        # logs in as role synapse through an ident map.
        services.postgresql = {
          enable = true;
          enableTCPIP = false;
          ensureDatabases = [ "grafana" ];
          ensureUsers = [
            {
              name = facts.databases.grafana.owner;
              ensureDBOwnership = true;
            }
            {
              name = facts.databases.synapse.owner;
              ensureDBOwnership = true;
            }
          ];
          initialScript = pkgs.writeText "rave-p6-synapse-database.sql" ''
            CREATE ROLE "${facts.databases.synapse.owner}" LOGIN;
            CREATE DATABASE "synapse" WITH OWNER "${facts.databases.synapse.owner}"
              TEMPLATE template0 ENCODING 'UTF8'
              LC_COLLATE = '${facts.databases.synapse.collate}' LC_CTYPE = '${facts.databases.synapse.collate}';
          '';
          identMap = ''
            rave matrix-synapse ${facts.databases.synapse.owner}
          '';
          authentication = lib.mkBefore ''
            local synapse ${facts.databases.synapse.owner} peer map=rave
          '';
        };

        # GitLab CE: the OpenID provider of the stack; served by nginx.
        services.gitlab = {
          enable = true;
          host = cfg.domain;
          port = facts.ports.https;
          https = true;
          databaseCreateLocally = true;
          databaseName = "gitlab";
          databaseUsername = facts.databases.gitlab.owner;
          databasePasswordFile = secrets.gitlab_db_password;
          initialRootPasswordFile = secrets.gitlab_root_password;
          secrets = {
            secretFile = secrets.gitlab_secret;
            otpFile = secrets.gitlab_otp;
            dbFile = secrets.gitlab_db;
            jwsFile = secrets.gitlab_jws;
            activeRecordPrimaryKeyFile = secrets.gitlab_active_record_primary_key;
            activeRecordDeterministicKeyFile = secrets.gitlab_active_record_deterministic_key;
            activeRecordSaltFile = secrets.gitlab_active_record_salt;
          };
          puma.workers = if cfg.safeMode then 0 else 2;
          sidekiq.concurrency = if cfg.safeMode then 5 else 20;
        };

        # Matrix Synapse: closed registration, no federation (no federation
        # listener, empty whitelist), SSO through GitLab, metrics on loopback.
        services.matrix-synapse = {
          enable = true;
          settings = {
            server_name = cfg.domain;
            public_baseurl = "${baseUrl}/";
            enable_registration = false;
            registration_shared_secret_path = secrets.synapse_registration_secret;
            federation_domain_whitelist = [ ];
            allow_public_rooms_over_federation = false;
            enable_metrics = true;
            listeners = [
              {
                port = internal.synapse;
                bind_addresses = [ "127.0.0.1" ];
                type = "http";
                tls = false;
                x_forwarded = true;
                resources = [
                  {
                    names = [ "client" ];
                    compress = true;
                  }
                ];
              }
              {
                port = internal.synapse_metrics;
                bind_addresses = [ "127.0.0.1" ];
                type = "metrics";
                tls = false;
                resources = [ ];
              }
            ];
            database = {
              name = "psycopg2";
              args = {
                database = "synapse";
                user = facts.databases.synapse.owner;
                host = "/run/postgresql";
              };
            };
            oidc_providers = [
              {
                idp_id = "gitlab";
                idp_name = "GitLab";
                issuer = baseUrl;
                client_id = cfg.oidc.synapseClientId;
                client_secret_path = secrets.synapse_oidc_client_secret;
                client_auth_method = "client_secret_post";
                scopes = [
                  "openid"
                  "profile"
                ];
                user_profile_method = "userinfo_endpoint";
                user_mapping_provider.config = {
                  localpart_template = "{{ user.nickname }}";
                  display_name_template = "{{ user.name }}";
                };
              }
            ];
          };
        };

        # Grafana: loopback, served under /grafana/, PostgreSQL over the
        # socket, login through GitLab only.
        services.grafana = {
          enable = true;
          settings = {
            server = {
              http_addr = "127.0.0.1";
              http_port = internal.grafana;
              domain = cfg.domain;
              root_url = "${baseUrl}/grafana/";
              serve_from_sub_path = true;
            };
            database = {
              type = "postgres";
              host = "/run/postgresql";
              name = "grafana";
              user = facts.databases.grafana.owner;
            };
            security = {
              admin_password = "$__file{${secrets.grafana_admin_password}}";
              secret_key = "$__file{${secrets.grafana_secret_key}}";
              cookie_secure = true;
            };
            users.allow_sign_up = false;
            analytics.reporting_enabled = false;
            "auth.gitlab" = {
              enabled = true;
              allow_sign_up = true;
              client_id = cfg.oidc.grafanaClientId;
              client_secret = "$__file{${secrets.grafana_oauth_client_secret}}";
              scopes = "openid email profile read_api";
              auth_url = "${baseUrl}/oauth/authorize";
              token_url = "${baseUrl}/oauth/token";
              api_url = "${baseUrl}/api/v4";
            };
          };
          provision = {
            enable = true;
            datasources.settings.datasources = [
              {
                name = "Prometheus";
                type = "prometheus";
                url = "http://127.0.0.1:${toString internal.prometheus}";
                isDefault = true;
              }
            ];
          };
        };

        # Prometheus: loopback only; scrapes Synapse and itself.
        services.prometheus = {
          enable = true;
          listenAddress = "127.0.0.1";
          port = internal.prometheus;
          scrapeConfigs = [
            {
              job_name = "prometheus";
              static_configs = [ { targets = [ "127.0.0.1:${toString internal.prometheus}" ]; } ];
            }
            {
              job_name = "synapse";
              metrics_path = "/_synapse/metrics";
              static_configs = [ { targets = [ "127.0.0.1:${toString internal.synapse_metrics}" ]; } ];
            }
          ];
        };

        # nginx: the only public listener, TLS on 3002, nothing on 80/443.
        services.nginx = {
          enable = true;
          recommendedProxySettings = true;
          recommendedTlsSettings = true;
          recommendedGzipSettings = true;
          virtualHosts.${cfg.domain} = {
            # TLS only: no plain-http server, no redirect listener on 80.
            onlySSL = true;
            listen = [
              {
                addr = "0.0.0.0";
                port = facts.ports.https;
                ssl = true;
              }
              {
                addr = "[::]";
                port = facts.ports.https;
                ssl = true;
              }
            ];
            sslCertificate = cfg.tls.certificate;
            sslCertificateKey = secrets.tls_key;
            locations = {
              "/" = {
                proxyPass = "http://unix:/run/gitlab/gitlab-workhorse.socket";
                extraConfig = "client_max_body_size 100m;";
              };
              "/_matrix".proxyPass = "http://127.0.0.1:${toString internal.synapse}";
              "/_synapse/client".proxyPass = "http://127.0.0.1:${toString internal.synapse}";
              "/grafana/" = {
                proxyPass = "http://127.0.0.1:${toString internal.grafana}";
                proxyWebsockets = true;
              };
            };
          };
        };
        users.users.nginx.extraGroups = [ "gitlab" ];

        # Register Synapse and Grafana as OAuth applications in GitLab, with
        # the client secrets from their secret files. Idempotent. Runs as
        # the gitlab user; the secrets reach it as systemd credentials, so
        # their files stay private to Synapse and Grafana.
        systemd.services.rave-p6-oauth-apps = {
          description = "Register the RAVE OAuth applications in GitLab";
          after = [ "${unitName "gitlab"}.service" ];
          requires = [ "${unitName "gitlab"}.service" ];
          wantedBy = [ "multi-user.target" ];
          serviceConfig =
            let
              app = name: clientId: credential: redirect: ''
                app = Doorkeeper::Application.find_or_initialize_by(uid: "${clientId}")
                app.name = "${name}"
                # Through Doorkeeper's secret strategy: GitLab stores a hash.
                Doorkeeper::Application.secret_strategy.store_secret(app, :secret,
                  File.read(File.join(ENV.fetch("CREDENTIALS_DIRECTORY"), "${credential}")).strip)
                app.redirect_uri = "${redirect}"
                app.scopes = "openid profile email read_api"
                app.confidential = true
                # First-party applications: no consent page in the sign-in.
                app.trusted = true
                app.save!
              '';
              runner = pkgs.writeText "rave-p6-oauth-apps.rb" ''
                ${app "RAVE Synapse" cfg.oidc.synapseClientId "synapse-client-secret" "${baseUrl}/_synapse/client/oidc/callback"}
                ${app "RAVE Grafana" cfg.oidc.grafanaClientId "grafana-client-secret" "${baseUrl}/grafana/login/gitlab"}
              '';
            in
            {
              Type = "oneshot";
              RemainAfterExit = true;
              User = facts.secrets.files.gitlab_secret;
              Group = facts.secrets.files.gitlab_secret;
              LoadCredential = [
                "synapse-client-secret:${secrets.synapse_oidc_client_secret}"
                "grafana-client-secret:${secrets.grafana_oauth_client_secret}"
              ];
              ExecStart = "/run/current-system/sw/bin/gitlab-rails runner ${runner}";
            };
        };

        # Services that call GitLab over https trust the front's CA.
        systemd.services.${unitName "synapse"}.environment = lib.mkIf (cfg.tls.caFile != null) {
          SSL_CERT_FILE = toString cfg.tls.caFile;
        };
        systemd.services.${unitName "grafana"}.environment = lib.mkIf (cfg.tls.caFile != null) {
          SSL_CERT_FILE = toString cfg.tls.caFile;
        };
      })

      (lib.mkIf (cfg.stack.enable && cfg.gitlab.accessToken.file != null) {
        # The access token of services.rave-p6.gitlab.accessToken, registered
        # for root through gitlab-rails with the value from its file (a
        # systemd credential); idempotent: an active token with that value
        # is kept.
        systemd.services.rave-p6-gitlab-access-token = {
          description = "Register the RAVE GitLab access token";
          after = [
            "${unitName "gitlab"}.service"
            "rave-p6-oauth-apps.service"
          ];
          requires = [ "${unitName "gitlab"}.service" ];
          wantedBy = [ "multi-user.target" ];
          serviceConfig = {
            Type = "oneshot";
            RemainAfterExit = true;
            User = facts.secrets.files.gitlab_secret;
            Group = facts.secrets.files.gitlab_secret;
            LoadCredential = [ "access-token:${cfg.gitlab.accessToken.file}" ];
            ExecStart =
              let
                script = pkgs.writeText "rave-p6-gitlab-access-token.rb" ''
                  value = File.read(File.join(ENV.fetch("CREDENTIALS_DIRECTORY"), "access-token")).strip
                  raise "the access token file holds #{value.length} characters; GitLab needs at least 20" if value.length < 20
                  existing = PersonalAccessToken.find_by_token(value)
                  unless existing && existing.active?
                    token = User.find_by_username!("root").personal_access_tokens.build(
                      name: "rave-p6", scopes: ${builtins.toJSON cfg.gitlab.accessToken.scopes}, expires_at: 365.days.from_now)
                    token.set_token(value)
                    token.save!
                  end
                '';
              in
              "/run/current-system/sw/bin/gitlab-rails runner ${script}";
          };
        };
      })

      (lib.mkIf (cfg.stack.enable && cfg.gitlab.runner.enable) {
        # An instance runner, created through the API with that token; its
        # authentication token stays in the unit's state directory (0700,
        # root), where gitlab-runner's registration reads it.
        systemd.services.rave-p6-gitlab-runner-registration = {
          description = "Register the RAVE GitLab runner";
          after = [ "rave-p6-gitlab-access-token.service" ];
          requires = [ "rave-p6-gitlab-access-token.service" ];
          before = [ "gitlab-runner.service" ];
          requiredBy = [ "gitlab-runner.service" ];
          path = [
            pkgs.curl
            pkgs.jq
          ];
          environment = lib.mkIf (cfg.tls.caFile != null) { CURL_CA_BUNDLE = toString cfg.tls.caFile; };
          serviceConfig = {
            Type = "oneshot";
            RemainAfterExit = true;
            StateDirectory = "rave-p6-gitlab-runner";
            StateDirectoryMode = "0700";
            LoadCredential = [ "access-token:${cfg.gitlab.accessToken.file}" ];
          };
          script = ''
            env=/var/lib/rave-p6-gitlab-runner/registration.env
            if [ -s "$env" ]; then exit 0; fi
            token="$(curl --fail --silent --show-error --max-time 60 \
              --header "PRIVATE-TOKEN: $(cat "$CREDENTIALS_DIRECTORY/access-token")" \
              --data runner_type=instance_type --data run_untagged=true \
              --data description=rave-p6 \
              ${baseUrl}/api/v4/user/runners | jq -er .token)"
            umask 077
            printf 'CI_SERVER_URL=%s\nCI_SERVER_TOKEN=%s\n' '${baseUrl}' "$token" > "$env.tmp"
            mv "$env.tmp" "$env"
          '';
        };

        services.gitlab-runner = {
          enable = true;
          services.rave-p6 = {
            authenticationTokenConfigFile = "/var/lib/rave-p6-gitlab-runner/registration.env";
            executor = "docker";
            dockerImage = "alpine:3.20";
            registrationFlags = [
              "--docker-host"
              "unix:///run/podman/podman.sock"
            ];
          };
        };
        # The docker executor talks to podman's Docker API socket, not to a
        # docker daemon.
        systemd.services.gitlab-runner = {
          after = lib.mkForce [
            "network.target"
            "podman.socket"
            "rave-p6-gitlab-runner-registration.service"
          ];
          requires = lib.mkForce [
            "podman.socket"
            "rave-p6-gitlab-runner-registration.service"
          ];
          environment = lib.mkIf (cfg.tls.caFile != null) { SSL_CERT_FILE = toString cfg.tls.caFile; };
          # podman's socket is group podman.
          serviceConfig.SupplementaryGroups = [ "podman" ];
        };
      })

      # SAFE mode: a MemoryMax per unit, from the facts.
      (lib.mkIf (cfg.stack.enable && cfg.safeMode) {
        systemd.services = lib.mapAttrs' (
          service: mib:
          lib.nameValuePair (unitName service) {
            serviceConfig.MemoryMax = "${toString mib}M";
          }
        ) facts.memory_max_mib;
      })
    ]
  );
}
