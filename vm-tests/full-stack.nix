# (2) The whole P6 stack (rave-p6) with the validator on the same node:
# after the stack is up, `spinup-smoke run` over the services, sandbox
# (container engine), oidc and security phases passes (WARNING: the other
# phases are not examined), `spinup-smoke verify` accepts the transcript and
# the DSSE envelope, and transcript, DSSE and JUnit are copied to
# $out/artifacts.
#
# Real GitLab and Grafana, not the demo's stand-ins: the validator's GitLab
# token is registered at boot by rave-p6's oneshot (from its file), a runner
# is registered with it, GitLab is the identity provider of the oidc phase
# (its discovery document, its own sign-in form) and Grafana signs in through
# [auth.gitlab]. The target names follow the demo contract, so the same
# health-checks/ and scenarios/oidc.toml run here and against the demo; what
# differs (Grafana's login name, what GitLab's sign-in page offers, Synapse's
# provider id) is in the target below.
{
  pkgs,
  spinup-smoke,
  modules,
  fixtures,
}:
let
  inherit (fixtures) secrets facts domain;
  inherit (pkgs) lib;
  front = "https://${domain}:${toString facts.ports.https}";
  # The profiles this test runs; every check in them must pass on the stack.
  profiles = [
    "${spinup-smoke}/share/spinup-smoke/health-checks"
    "${spinup-smoke}/share/spinup-smoke/scenarios/oidc.toml"
  ];
  # The phases it examines: the node's unit runs them and the script expects
  # them (nodes-eval.nix reads them from the node, never from a copy).
  phases = [
    "services"
    "sandbox"
    "oidc"
    "security"
  ];
  # The OAuth client of the oidc checks and their test user, created in
  # GitLab by the test (fixtures, not part of rave-p6). Read as the gitlab
  # user from its copies of the secrets.
  redirectUri = "http://127.0.0.1/spinup-smoke/callback";
  gitlabFixture = "/etc/spinup-smoke-vm/gitlab-fixture.rb";
  gitlabFixtureText = ''
    read = ->(name) { File.read("/run/rave-test-gitlab/#{name}").strip }
    user = User.find_by_username("alice") ||
      User.new(username: "alice", name: "Alice", email: "alice@${domain}")
    user.password = read.("idp_test_password")
    user.password_confirmation = user.password
    if user.new_record?
      user.assign_personal_namespace(Organizations::Organization.default_organization)
      user.skip_confirmation!
    end
    user.save!
    app = Doorkeeper::Application.find_or_initialize_by(uid: "spinup-smoke")
    app.name = "spinup-smoke"
    Doorkeeper::Application.secret_strategy.store_secret(app, :secret, read.("idp_client_secret_spinup_smoke"))
    app.redirect_uri = "${redirectUri}"
    app.scopes = "openid profile"
    app.confidential = true
    app.trusted = true
    app.save!
  '';
  # A job image for the container checks: a static busybox, loaded into
  # podman's store before the run (the checks never pull).
  jobImage = pkgs.dockerTools.buildImage {
    name = "localhost/spinup-smoke/busybox";
    tag = "vm-test";
    copyToRoot = [ pkgs.pkgsStatic.busybox ];
    config.Cmd = [ "/bin/sh" ];
  };
in
pkgs.testers.runNixOSTest {
  name = "spinup-smoke-full-stack";

  nodes.machine =
    { config, ... }:
    {
      imports = [
        (fixtures.node { inherit modules; })
        (fixtures.module { })
      ];

      # SAFE mode budget: the whole stack within 8 GiB.
      virtualisation = {
        memorySize = facts.budgets.safe.memory_gib * 1024;
        cores = 4;
        diskSize = 16 * 1024;
      };

      services.rave-p6 = {
        enable = true;
        inherit domain;
        # The validator's gitlab_token, registered in GitLab at boot; the
        # runner is registered with it too.
        gitlab.accessToken.file = "/run/rave-test/gitlab_token";
        tls = {
          certificate = "${secrets}/tls_cert.pem";
          caFile = "${secrets}/ca.pem";
        };
      };
      security.pki.certificateFiles = [ "${secrets}/ca.pem" ];

      services.spinup-smoke = {
        inherit profiles phases;
        target = {
          name = "vm-full-stack";
          rave_version = "P6-vm-test";
          vars = {
            host = "127.0.0.1";
            # health-checks/config.toml and performance.toml load with the
            # rest; their phases are not selected here.
            repo.root = "${spinup-smoke}/share/spinup-smoke";
            config.sops_files = "${spinup-smoke}/share/spinup-smoke/nixos/secrets/*.sops.yaml";
            stack.pid_dir = "/run";
            postgres = {
              host = "127.0.0.1";
              port = toString config.services.postgresql.settings.port;
              admin_user = "rave_admin";
              data_dir = config.services.postgresql.dataDir;
              databases = facts.database_names;
            };
            synapse = {
              url = "http://127.0.0.1:${toString facts.internal_ports.synapse}";
              server_name = domain;
              metrics_url = "http://127.0.0.1:${toString facts.internal_ports.synapse_metrics}/_synapse/metrics";
              operator_user = "operator";
              # idp_id "gitlab" in rave-p6.nix.
              sso_idp = "oidc-gitlab";
            };
            # GitLab is the identity provider.
            idp = {
              issuer = front;
              test_user = "alice";
              client_id = "spinup-smoke";
              redirect_uri = redirectUri;
            };
            prometheus.url = "http://127.0.0.1:${toString facts.internal_ports.prometheus}";
            tls_front = {
              host = domain;
              address = "127.0.0.1:${toString facts.ports.https}";
              url = front;
              ca_file = "${secrets}/ca.pem";
            };
            gitlab = {
              url = front;
              # GitLab is the IdP here: its own password form signs users in.
              sign_in_offers = "user[password]";
            };
            grafana = {
              url = "${front}/grafana";
              # [auth.gitlab] in rave-p6.nix: the login is /login/gitlab.
              oauth_provider = "gitlab";
            };
            containers = {
              socket = "/run/podman/podman.sock";
              image = "localhost/spinup-smoke/busybox:vm-test";
            };
          };
          secrets =
            let
              file = name: { file = "${facts.secrets.dir}/${name}"; };
              stored = name: { file = "/run/rave-test/${name}"; };
            in
            {
              postgres_admin_password = stored "postgres_admin_password";
              gitlab_db_password = file "gitlab_db_password";
              synapse_db_password = stored "synapse_db_password";
              grafana_db_password = stored "grafana_db_password";
              synapse_admin_password = stored "synapse_admin_password";
              synapse_operator_password = stored "synapse_operator_password";
              synapse_registration_secret = file "synapse_registration_secret";
              idp_test_password = stored "idp_test_password";
              idp_client_secret_spinup_smoke = stored "idp_client_secret_spinup_smoke";
              gitlab_token = stored "gitlab_token";
            };
        };
      };

      environment.etc."spinup-smoke-vm/gitlab-fixture.rb".text = gitlabFixtureText;

      # The validator's own test credentials (root-only copies), and the
      # gitlab user's copies of those the GitLab fixture sets.
      systemd.tmpfiles.rules = [
        "d /run/rave-test 0700 root root -"
        "d /run/rave-test-gitlab 0700 gitlab gitlab -"
      ]
      ++ lib.concatMap
        (name: [
          "C /run/rave-test/${name} - - - - ${secrets}/${name}"
          "z /run/rave-test/${name} 0400 root root -"
        ])
        [
          "postgres_admin_password"
          "synapse_db_password"
          "grafana_db_password"
          "synapse_admin_password"
          "synapse_operator_password"
          "idp_test_password"
          "idp_client_secret_spinup_smoke"
          "gitlab_token"
        ]
      ++ lib.concatMap
        (name: [
          "C /run/rave-test-gitlab/${name} - - - - ${secrets}/${name}"
          "z /run/rave-test-gitlab/${name} 0400 gitlab gitlab -"
        ])
        [
          "idp_test_password"
          "idp_client_secret_spinup_smoke"
        ];
    };

  testScript =
    { nodes, ... }:
    let
      synapse = nodes.machine.services.matrix-synapse.package;
      psql = "${nodes.machine.services.postgresql.package}/bin/psql";
    in
    ''
      ${fixtures.pythonHelpers}

      def secret(name):
          return machine.succeed(f"cat /run/rave-test/{name}").strip()

      machine.start()
      machine.wait_for_unit("multi-user.target", timeout=${toString (facts.budgets.safe.boot_to_healthy_minutes * 60)})
      for unit in ["${facts.units.postgresql}", "${facts.units.synapse}", "${facts.units.grafana}",
                   "${facts.units.prometheus}", "${facts.units.nginx}", "${facts.units.gitlab}"]:
          machine.wait_for_unit(unit)
      machine.wait_until_succeeds(
          "curl -sSf --cacert ${secrets}/ca.pem ${front}/-/readiness",
          timeout=${toString (facts.budgets.safe.boot_to_healthy_minutes * 60)},
      )

      # Fixture: the validator's PostgreSQL admin role and the service roles'
      # passwords (the services themselves log in over the socket, peer auth).
      machine.succeed(
          "runuser -u postgres -- ${psql} -v ON_ERROR_STOP=1 "
          + f"-c \"CREATE ROLE rave_admin LOGIN SUPERUSER PASSWORD '{secret('postgres_admin_password')}'\" "
          + f"-c \"ALTER ROLE gitlab PASSWORD '{machine.succeed('cat ${facts.secrets.dir}/gitlab_db_password').strip()}'\" "
          + f"-c \"ALTER ROLE synapse PASSWORD '{secret('synapse_db_password')}'\" "
          + f"-c \"ALTER ROLE grafana PASSWORD '{secret('grafana_db_password')}'\""
      )
      # Fixture: Synapse's admin and operator users (shared-secret registration).
      for user, admin in [("admin", "--admin"), ("operator", "--no-admin")]:
          machine.succeed(
              "${synapse}/bin/register_new_matrix_user "
              + "--shared-secret \"$(cat ${facts.secrets.dir}/synapse_registration_secret)\" "
              + f"--user {user} --password \"$(cat /run/rave-test/synapse_{user}_password)\" {admin} "
              + "http://127.0.0.1:${toString facts.internal_ports.synapse}"
          )

      # rave-p6's oneshots: the validator's GitLab token registered, a
      # runner registered with it and gitlab-runner running.
      machine.wait_for_unit("rave-p6-gitlab-access-token.service")
      machine.wait_for_unit("rave-p6-gitlab-runner-registration.service")
      machine.wait_for_unit("gitlab-runner.service")
      machine.wait_until_succeeds(
          "curl -sSf --cacert ${secrets}/ca.pem "
          + f"--header 'PRIVATE-TOKEN: {secret('gitlab_token')}' "
          # An empty list ([]) has no id.
          + "'${front}/api/v4/runners/all?status=online' | grep -q id",
          timeout=300,
      )

      # Fixture: the oidc checks' OAuth client and test user, in GitLab.
      machine.succeed("/run/current-system/sw/bin/gitlab-rails runner ${gitlabFixture}")

      # Fixture: the job image of the container checks, in podman's store.
      machine.succeed("podman load < ${jobImage}")

      status = run_validator(machine)
      print(machine.succeed("journalctl -u spinup-smoke.service --no-pager | tail -n 200"))
      assert status == 0, f"spinup-smoke run exited {status}, expected 0"

      path = transcript(machine)
      document = load(machine, path)
      # Only the selected phases are examined: WARNING (exit 0), never SUCCESS.
      assert document["overall_status"] == "WARNING", document["overall_status"]
      assert document["test_summary"]["failed"] == 0, document["test_summary"]
      ran = {p["phase"] for p in document["phases"] if p["status"] == "RAN"}
      assert set(${builtins.toJSON phases}) <= ran, ran

      machine.succeed(f"spinup-smoke verify {path} --pubkey {PUBKEY}")
      envelope = attestation(machine)
      machine.succeed(f"spinup-smoke verify {envelope} --pubkey {PUBKEY}")
      junit = newest(machine, "*junit.xml")
      machine.succeed(f"grep -q '<testsuite' {junit}")

      for artifact in [path, envelope, junit]:
          machine.copy_from_vm(artifact, "artifacts")
    '';
}
