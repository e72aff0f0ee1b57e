# (4) The security checks can fail: a node with ssh password logins on and
# an extra service listening on port 8080, which the firewall opens. The
# security phase must FAIL (exit 1) naming exactly the sshd, listening
# sockets and firewall checks; the others still pass.
{
  pkgs,
  spinup-smoke,
  modules,
  fixtures,
}:
let
  extraPort = 8080;
in
pkgs.testers.runNixOSTest {
  name = "spinup-smoke-security-fails";

  nodes.machine =
    { lib, ... }:
    {
      # Not rave-p6 (its assertions refuse this configuration): a plain
      # node with the same nftables firewall, weakened on purpose.
      imports = [
        modules.spinup-smoke
        (fixtures.module { declareUsers = true; })
        fixtures.tlsFront
      ];
      networking.useDHCP = false;
      networking.nftables.enable = true;
      networking.firewall = {
        enable = true;
        allowedTCPPorts = [
          22
          3002
          extraPort
        ];
      };
      services.openssh = {
        enable = true;
        # Port 22 is in the list above already.
        openFirewall = false;
        settings = {
          PasswordAuthentication = true;
          PermitRootLogin = "no";
        };
      };
      systemd.services.extra-listener = {
        wantedBy = [ "multi-user.target" ];
        serviceConfig.ExecStart = "${pkgs.python3}/bin/python3 -m http.server ${toString extraPort} --bind 0.0.0.0";
      };
      services.spinup-smoke = {
        enable = true;
        package = spinup-smoke;
        startOnBoot = false;
        signingKeyFile = "${fixtures.facts.secrets.dir}/spinup_signing_key";
        profiles = [ "${spinup-smoke}/share/spinup-smoke/health-checks/security.toml" ];
        phases = [ "security" ];
        target = {
          name = "vm-security-fails";
          rave_version = "P6-vm-test";
          vars.tls_front = fixtures.tlsFrontVars;
        };
      };
    };

  testScript = ''
    ${fixtures.pythonHelpers}

    machine.wait_for_unit("multi-user.target")
    machine.wait_for_unit("extra-listener.service")
    machine.wait_for_open_port(${toString extraPort})

    status = run_validator(machine)
    print(machine.succeed("journalctl -u spinup-smoke.service --no-pager | tail -n 80"))
    assert status == 1, f"spinup-smoke run exited {status}, expected 1 (a check failed)"

    path = transcript(machine)
    document = load(machine, path)
    assert document["overall_status"] != "SUCCESS", document["overall_status"]
    seen = outcomes(document)
    failed = sorted(k for k, v in seen.items() if v in ("failed", "fail"))
    assert failed == ["security.firewall.input_chain", "security.ports.allow_list",
                      "security.sshd.effective_config"], failed
    for check in ["security.tls.front",
                  "security.secrets.signing_key"]:
        assert seen.get(check) in ("passed", "pass"), f"{check}: {seen.get(check)}"

    # The evidence names the extra port and the password logins.
    machine.succeed(f"grep -q '${toString extraPort}' {path}")
    machine.succeed(f"grep -q 'passwordauthentication yes' {path}")
    # A failing run is still signed and verifiable.
    machine.succeed(f"spinup-smoke verify {path} --pubkey {PUBKEY}")
  '';
}
