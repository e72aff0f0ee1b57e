# Evaluates the node of every VM test with the module system and the stubbed
# NixOS of ./stub.nix, and checks what each test relies on: the validator
# unit is enabled with the right profiles and phases, the secrets are
# installed with the facts' owners, the weakened node is really weakened.
# Catches a test that would boot but check the wrong thing, without nixpkgs:
#   nix-instantiate --eval --strict --json vm-tests/nodes-eval.nix --arg lib 'import /path/to/nixpkgs/lib'
# Evaluates to a list of "ok: ..." lines, or throws naming the first failure.
{ lib }:
let
  facts = import ../nixos/facts.nix;
  stub = import ./stub.nix { inherit lib; };
  inherit (stub) pkgs eval failedAssertions;
  spinup-smoke = stub.fakePackage "spinup-smoke";
  modules = {
    rave-p6 = ../nixos/rave-p6.nix;
    spinup-smoke = ../nixos/spinup-smoke.nix;
  };
  fixtures = import ./fixtures.nix { inherit pkgs spinup-smoke; };
  node =
    name:
    eval [
      (import (./. + "/${name}.nix") {
        inherit
          pkgs
          spinup-smoke
          modules
          fixtures
          ;
      }).nodes.machine
    ];

  minimal = node "minimal";
  full = node "full-stack";
  tamper = node "tamper";
  weak = node "security-fails";

  validatorUnit =
    cfg:
    cfg.systemd.services.${lib.removeSuffix ".service" facts.units.validator} or {
      wantedBy = null;
      serviceConfig.ExecStart = "(no validator unit: services.spinup-smoke.enable is off)";
    };
  execStart = cfg: (validatorUnit cfg).serviceConfig.ExecStart;
  # The phases a node's unit must pass: read from the node itself, so the
  # expectations below never hold a second copy to drift from.
  phasesOf = cfg: lib.concatMapStringsSep " " (p: "--phase ${p}") cfg.services.spinup-smoke.phases;
  phaseList = cfg: lib.concatStringsSep ", " cfg.services.spinup-smoke.phases;
  runsItsPhases =
    cfg:
    cfg.services.spinup-smoke.phases != [ ] && lib.hasInfix (phasesOf cfg) (execStart cfg);
  runsOnDemand =
    cfg:
    cfg.services.spinup-smoke.enable
    && (validatorUnit cfg).wantedBy == [ ]
    && cfg.services.spinup-smoke.signingKeyFile == "${facts.secrets.dir}/spinup_signing_key";

  # Every secret of the facts copied to facts.secrets.dir with its owner, 0400.
  secretsInstalled =
    cfg:
    lib.all (
      name:
      lib.elem "z ${facts.secrets.dir}/${name} 0400 ${facts.secrets.files.${name}} ${
        facts.secrets.files.${name}
      } -" cfg.systemd.tmpfiles.rules
    ) (lib.attrNames facts.secrets.files);
  ownersDeclared =
    cfg:
    lib.all (owner: owner == "root" || cfg.users.users ? ${owner}) (
      lib.attrValues facts.secrets.files
    );

  # The names the demo contract gives a target (health-checks/ use them).
  demoVars = [
    "host"
    "postgres.host"
    "postgres.port"
    "postgres.admin_user"
    "postgres.data_dir"
    "postgres.databases"
    "synapse.url"
    "synapse.server_name"
    "synapse.metrics_url"
    "synapse.operator_user"
    "idp.issuer"
    "idp.test_user"
    "prometheus.url"
    "tls_front.host"
    "tls_front.address"
    "tls_front.url"
    "tls_front.ca_file"
    "gitlab.url"
    "gitlab.sign_in_offers"
    "grafana.url"
    "grafana.oauth_provider"
    "containers.socket"
    "containers.image"
  ];
  demoSecrets = [
    "postgres_admin_password"
    "gitlab_db_password"
    "synapse_db_password"
    "grafana_db_password"
    "synapse_admin_password"
    "synapse_operator_password"
    "synapse_registration_secret"
    "idp_test_password"
    "gitlab_token"
  ];
  fullTarget = full.services.spinup-smoke.target;

  expectations = [
    {
      what = "vm-minimal: lockdown only, validator on demand over ${phaseList minimal} with the node profiles";
      ok =
        failedAssertions minimal == [ ]
        && minimal.services.rave-p6.enable
        && !minimal.services.rave-p6.stack.enable
        && runsOnDemand minimal
        && runsItsPhases minimal
        && lib.all (p: lib.elem p minimal.services.spinup-smoke.phases) [ "boot" "security" ]
        && lib.hasInfix "--profile ${fixtures.nodeProfiles} " (execStart minimal)
        && lib.hasInfix "--profile ${spinup-smoke}/share/spinup-smoke/health-checks/security.toml " (
          execStart minimal
        )
        && !minimal.networking.useDHCP;
      found = execStart minimal;
    }
    {
      what = "vm-minimal: every secret installed with its owner, owners exist";
      ok = secretsInstalled minimal && ownersDeclared minimal;
      found = minimal.systemd.tmpfiles.rules;
    }
    {
      what = "vm-full-stack: the stack in the SAFE budget, validator over ${phaseList full}";
      ok =
        failedAssertions full == [ ]
        && full.services.rave-p6.stack.enable
        && full.services.rave-p6.safeMode
        && full.virtualisation.memorySize == facts.budgets.safe.memory_gib * 1024
        && runsOnDemand full
        && runsItsPhases full
        && lib.all (p: lib.elem p full.services.spinup-smoke.phases) [ "services" "security" ]
        && secretsInstalled full;
      found = execStart full;
    }
    {
      what = "vm-full-stack: the target names every var and secret of the demo contract, secrets as files";
      ok =
        lib.all (v: lib.hasAttrByPath (lib.splitString "." v) fullTarget.vars) demoVars
        && lib.all (s: fullTarget.secrets ? ${s} && fullTarget.secrets.${s} ? file) demoSecrets
        && fullTarget.vars.postgres.port == "5432"
        && fullTarget.vars.postgres.databases == facts.database_names;
      found = fullTarget;
    }
    {
      what = "vm-full-stack: the target fits the node's real GitLab and Grafana, not the demo's stand-ins";
      ok =
        let
          grafana = full.services.grafana.settings;
          provider = fullTarget.vars.grafana.oauth_provider;
          synapseIdp = lib.head full.services.matrix-synapse.settings.oidc_providers;
          secretFile = name: fullTarget.secrets.${name}.file;
        in
        # The gitlab_token the checks send is the token rave-p6 registers at
        # boot, and a runner is registered with it.
        full.services.rave-p6.gitlab.accessToken.file == secretFile "gitlab_token"
        && full.systemd.services ? rave-p6-gitlab-access-token
        && full.services.rave-p6.gitlab.runner.enable
        && full.services.gitlab-runner.enable
        # Grafana's OAuth check asks for the login its settings enable.
        && (grafana."auth.${provider}".enabled or false)
        && lib.hasPrefix fullTarget.vars.idp.issuer grafana."auth.${provider}".auth_url
        # GitLab is the IdP: no OmniAuth login on its sign-in page, its own
        # password form instead; the issuer is GitLab's own URL.
        && !(full.services.gitlab ? omniauth)
        && fullTarget.vars.gitlab.sign_in_offers == "user[password]"
        && fullTarget.vars.idp.issuer == fullTarget.vars.gitlab.url
        && synapseIdp.issuer == fullTarget.vars.idp.issuer
        && fullTarget.vars.synapse.sso_idp == "oidc-${synapseIdp.idp_id}"
        && lib.elem "oidc" full.services.spinup-smoke.phases
        && lib.all (s: fullTarget.secrets ? ${s}) [
          "idp_test_password"
          "idp_client_secret_spinup_smoke"
        ];
      found = fullTarget.vars;
    }
    {
      what = "vm-tamper: validator on demand over ${phaseList tamper}";
      ok =
        failedAssertions tamper == [ ]
        && runsOnDemand tamper
        && runsItsPhases tamper
        && secretsInstalled tamper;
      found = execStart tamper;
    }
    {
      what = "vm-security-fails: password logins on, port 8080 open, root login off, nftables, no rave-p6";
      ok =
        weak.services.openssh.settings.PasswordAuthentication
        && weak.services.openssh.settings.PermitRootLogin == "no"
        && lib.elem 8080 weak.networking.firewall.allowedTCPPorts
        && weak.networking.nftables.enable
        && weak.systemd.services ? extra-listener
        && !(weak ? services.rave-p6)
        && runsOnDemand weak
        && runsItsPhases weak
        && secretsInstalled weak;
      found = weak.networking.firewall;
    }
  ];

  check =
    e:
    if e.ok then
      "ok: ${e.what}"
    else
      throw "nodes-eval: expected ${e.what}; found ${builtins.toJSON e.found}";
in
map check expectations
