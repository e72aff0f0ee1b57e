# The facts about a RAVE P6 deployment that both sides rely on: the NixOS
# modules (nixos/rave-p6.nix) build the system from them, and the validator
# checks the live system against them (health-checks/rave-facts.json, loaded
# as `${facts.*}` vars, is this file evaluated to JSON).
#
# Pure on purpose: no imports, no nixpkgs, no fetchers, so it evaluates on any
# machine with nix-instantiate:
#   nix-instantiate --eval --strict --json nixos/facts.nix
# After editing, regenerate the JSON with scripts/gen-facts.sh; CI runs
# scripts/gen-facts.sh --check and fails when the two differ.
let
  gib = 1024 * 1024 * 1024;
  mib = 1024 * 1024;

  # Budgets from the P6 spec. The spec gives FULL_PIPE only as a memory range
  # (8-16 GB); its other budgets equal SAFE's.
  safe = rec {
    build_minutes = 15;
    boot_to_healthy_minutes = 10;
    health_phase_minutes = 5;
    sandbox_minutes = 20;
    # The same in seconds, the unit the validator's phase timings use.
    build_seconds = build_minutes * 60;
    boot_to_healthy_seconds = boot_to_healthy_minutes * 60;
    health_phase_seconds = health_phase_minutes * 60;
    sandbox_seconds = sandbox_minutes * 60;
    memory_gib = 8;
    memory_bytes = 8 * gib;
    sandbox_vm = {
      memory_mib = 4096;
      memory_bytes = 4096 * mib;
      vcpus = 2;
    };
  };
in
{
  # The only TCP ports reachable from outside (firewall and listening sockets).
  ports = {
    ssh = 22;
    https = 3002;
    allowed_tcp = [
      22
      3002
    ];
  };

  # Loopback-only ports of the services behind the TLS front (nginx on 3002).
  internal_ports = {
    synapse = 8008;
    synapse_metrics = 9000;
    grafana = 3000;
    prometheus = 9090;
  };

  # systemd units of the stack, by service.
  units = {
    postgresql = "postgresql.service";
    gitlab = "gitlab.service";
    gitlab_workhorse = "gitlab-workhorse.service";
    gitlab_sidekiq = "gitlab-sidekiq.service";
    gitaly = "gitaly.service";
    redis_gitlab = "redis-gitlab.service";
    synapse = "matrix-synapse.service";
    grafana = "grafana.service";
    prometheus = "prometheus.service";
    nginx = "nginx.service";
    sshd = "sshd.service";
    firewall = "nftables.service";
    validator = "spinup-smoke.service";
  };

  # The stack's services (keys of `units`), each as the validator's
  # profiles name it (a check's `service`): config.p6.services_examined
  # fails when one has no check in the profiles a run loads.
  services = {
    postgresql = "postgres";
    gitlab = "gitlab";
    synapse = "synapse";
    grafana = "grafana";
    prometheus = "prometheus";
  };

  # PostgreSQL databases; each is owned by the role of the same name.
  databases = {
    gitlab = {
      owner = "gitlab";
    };
    synapse = {
      owner = "synapse";
      collate = "C";
    };
    grafana = {
      owner = "grafana";
    };
  };
  database_names = "gitlab,synapse,grafana";

  # nftables table and chain that must drop by default.
  firewall = {
    nft_family = "inet";
    nft_table = "nixos-fw";
    input_chain = "input";
    input_policy = "drop";
  };

  # Where sops-nix puts decrypted secrets, and who owns each one.
  secrets = {
    dir = "/run/secrets";
    mode_max = "0600";
    files = {
      gitlab_db_password = "gitlab";
      gitlab_root_password = "gitlab";
      gitlab_secret = "gitlab";
      gitlab_otp = "gitlab";
      gitlab_db = "gitlab";
      gitlab_jws = "gitlab";
      gitlab_active_record_primary_key = "gitlab";
      gitlab_active_record_deterministic_key = "gitlab";
      gitlab_active_record_salt = "gitlab";
      synapse_oidc_client_secret = "matrix-synapse";
      synapse_registration_secret = "matrix-synapse";
      grafana_oauth_client_secret = "grafana";
      grafana_admin_password = "grafana";
      grafana_secret_key = "grafana";
      tls_key = "nginx";
      spinup_signing_key = "root";
    };
  };

  # SAFE mode caps each unit's memory (systemd MemoryMax, in MiB); the caps
  # sum to less than budgets.safe.memory_gib, leaving room for the kernel,
  # sshd and the validator (scripts/check-nix.sh checks the sum).
  memory_max_mib = {
    postgresql = 1024;
    gitlab = 2560;
    gitlab_sidekiq = 1024;
    gitaly = 512;
    gitlab_workhorse = 256;
    redis_gitlab = 256;
    synapse = 1024;
    grafana = 256;
    prometheus = 512;
    nginx = 128;
  };

  budgets = {
    inherit safe;
    full_pipe = safe // {
      memory_gib = 16;
      memory_bytes = 16 * gib;
    };
  };
}
