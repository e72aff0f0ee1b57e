# (3) Tampering: a signed transcript and its DSSE envelope verify; the same
# transcript with one value changed in place (layout kept, so the signature
# check is what fails) exits 1 from `spinup-smoke verify`, and so do a
# changed duration, a changed DSSE payload and a foreign public key.
{
  pkgs,
  spinup-smoke,
  modules,
  fixtures,
}:
pkgs.testers.runNixOSTest {
  name = "spinup-smoke-tamper";

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
      profiles = [ "${spinup-smoke}/share/spinup-smoke/health-checks/security.toml" ];
      phases = [ "security" ];
      target = {
        name = "vm-tamper";
        rave_version = "P6-vm-test";
        vars.tls_front = fixtures.tlsFrontVars;
      };
    };
  };

  testScript = ''
    ${fixtures.pythonHelpers}
    import base64

    machine.wait_for_unit("multi-user.target")
    assert run_validator(machine) == 0

    path = transcript(machine)
    envelope = attestation(machine)
    machine.succeed(f"spinup-smoke verify {path} --pubkey {PUBKEY}")
    machine.succeed(f"spinup-smoke verify {envelope} --pubkey {PUBKEY}")

    def must_not_verify(what, changed, pubkey=PUBKEY):
        status = exit_status(machine, f"spinup-smoke verify {changed} --pubkey {pubkey}")
        assert status == 1, f"verify of {what} exited {status}, expected 1"

    # One value changed in place, layout untouched: the verdict flips.
    status_now = load(machine, path)["overall_status"]
    flipped = "FAILURE" if status_now == "SUCCESS" else "SUCCESS"
    machine.succeed(
        f"sed 's/\"overall_status\": \"{status_now}\"/\"overall_status\": \"{flipped}\"/' {path} > /tmp/changed.json"
    )
    machine.fail(f"cmp -s {path} /tmp/changed.json")
    must_not_verify("a transcript with overall_status changed", "/tmp/changed.json")

    # One digit of one duration changed.
    machine.succeed(f"sed '0,/\"duration_ms\": \\([0-9]\\)/s//\"duration_ms\": 9\\1/' {path} > /tmp/slower.json")
    machine.fail(f"cmp -s {path} /tmp/slower.json")
    must_not_verify("a transcript with a duration changed", "/tmp/slower.json")

    # The DSSE payload changed: the statement names another digest.
    old_payload = load(machine, envelope)["payload"]
    statement = json.loads(base64.b64decode(old_payload))
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    new_payload = base64.b64encode(json.dumps(statement, separators=(",", ":")).encode()).decode()
    machine.succeed(f"sed 's#{old_payload}#{new_payload}#' {envelope} > /tmp/changed.intoto.json")
    machine.fail(f"cmp -s {envelope} /tmp/changed.intoto.json")
    must_not_verify("a DSSE envelope with its payload changed", "/tmp/changed.intoto.json")

    # A foreign key pair: the genuine transcript does not verify against it.
    machine.succeed("spinup-smoke keygen --out /tmp/other")
    must_not_verify("a genuine transcript against a foreign public key", path, pubkey="/tmp/other.pub")

    # The untouched files still verify (the failures above come from the edits).
    machine.succeed(f"spinup-smoke verify {path} --pubkey {PUBKEY}")
  '';
}
