# (1) A locked-down node (rave-p6 with stack.enable = false) boots, and the
# validator's config, boot and security phases pass; its signed transcript
# verifies against the public key.
{
  pkgs,
  spinup-smoke,
  modules,
  fixtures,
}:
let
  # The phases it examines: the node's unit runs them and the script expects
  # them (nodes-eval.nix reads them from the node, never from a copy).
  phases = [
    "config"
    "boot"
    "security"
  ];
in
pkgs.testers.runNixOSTest {
  name = "spinup-smoke-minimal";

  nodes.machine = {
    imports = [
      (fixtures.node { inherit modules; })
      (fixtures.module { declareUsers = true; })
      fixtures.tlsFront
    ];
    services.rave-p6 = {
      enable = true;
      stack.enable = false;
    };
    services.spinup-smoke = {
      profiles = [
        fixtures.nodeProfiles
        "${spinup-smoke}/share/spinup-smoke/health-checks/security.toml"
      ];
      inherit phases;
      target = {
        name = "vm-minimal";
        rave_version = "P6-vm-test";
        vars = {
          host = "127.0.0.1";
          tls_front = fixtures.tlsFrontVars;
        };
      };
    };
  };

  testScript = ''
    ${fixtures.pythonHelpers}

    machine.wait_for_unit("multi-user.target")
    machine.wait_for_unit("sshd.service")

    status = run_validator(machine)
    print(machine.succeed("journalctl -u spinup-smoke.service --no-pager | tail -n 80"))
    assert status == 0, f"spinup-smoke run exited {status}, expected 0 (all checks pass)"

    path = transcript(machine)
    document = load(machine, path)
    # Only the selected phases are examined: WARNING (exit 0), never SUCCESS.
    assert document["overall_status"] == "WARNING", document["overall_status"]
    assert document["test_summary"]["failed"] == 0, document["test_summary"]
    ran = {p["phase"] for p in document["phases"] if p["status"] == "RAN"}
    assert set(${builtins.toJSON phases}) <= ran, ran
    seen = outcomes(document)
    for check in ["node.config.sshd_valid", "node.boot.system_running",
                  "security.sshd.effective_config", "security.ports.allow_list",
                  "security.firewall.input_chain", "security.tls.front",
                  "security.secrets.tls_key", "security.secrets.signing_key"]:
        assert seen.get(check) in ("passed", "pass"), f"{check}: {seen.get(check)}"

    machine.succeed(f"spinup-smoke verify {path} --pubkey {PUBKEY}")
    machine.copy_from_vm(path, "artifacts")
  '';
}
