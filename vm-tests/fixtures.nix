# Test fixtures shared by the VM tests: throw-away secrets (a TLS CA and
# certificate for rave.local, GitLab keys, passwords, the transcript signing
# key pair) and a NixOS module that puts them where sops-nix would, at
# /run/secrets/<name> with the owners of nixos/facts.nix and mode 0400.
# These secrets live in the store: fine for a test, never for a deployment.
{ pkgs, spinup-smoke }:
let
  inherit (pkgs) lib;
  facts = import ../nixos/facts.nix;
  domain = "rave.local";

  secrets = pkgs.runCommand "rave-vm-test-secrets" { nativeBuildInputs = [ pkgs.openssl spinup-smoke ]; } ''
    mkdir -p $out
    cd $out

    # A private CA and a certificate for the TLS front.
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=RAVE test CA" \
      -keyout ca.key -out ca.pem
    openssl req -newkey rsa:2048 -nodes -subj "/CN=${domain}" -keyout tls_key -out tls.csr
    printf 'subjectAltName=DNS:${domain},IP:127.0.0.1\n' > san.ext
    openssl x509 -req -in tls.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile san.ext -out tls_cert.pem
    rm -f ca.key tls.csr san.ext ca.srl

    # GitLab's OpenID signing key, then a random value for every other secret.
    openssl genrsa -out gitlab_jws 2048
    for name in ${lib.concatStringsSep " " (lib.attrNames facts.secrets.files)}; do
      [ -e "$name" ] || openssl rand -hex 24 > "$name"
    done
    # The passwords the validator's target uses for the PostgreSQL roles.
    for name in postgres_admin_password synapse_db_password grafana_db_password \
                synapse_admin_password synapse_operator_password idp_test_password gitlab_token \
                idp_client_secret_spinup_smoke; do
      openssl rand -hex 24 > "$name"
    done

    # The transcript signing key pair (spinup-smoke keygen --out PREFIX
    # writes PREFIX.key and PREFIX.pub).
    rm -f spinup_signing_key
    spinup-smoke keygen --out signing
    mv signing.key spinup_signing_key
    mv signing.pub spinup_signing_key.pub
  '';

  # vm-tests/profiles/ with the facts file beside it, as `facts = ...` needs.
  nodeProfiles = pkgs.runCommand "spinup-smoke-vm-test-profiles" { } ''
    mkdir -p $out
    cp ${./profiles/node.toml} $out/node.toml
    cp ${../health-checks/rave-facts.json} $out/rave-facts.json
  '';

  # Installs every secret of the facts at facts.secrets.dir/<name>.
  # declareUsers: create the owning system users (hosts without the stack).
  module =
    {
      declareUsers ? false,
    }:
    {
      systemd.tmpfiles.rules = [
        "d ${facts.secrets.dir} 0751 root root -"
      ]
      ++ lib.concatLists (
        lib.mapAttrsToList (name: owner: [
          "C ${facts.secrets.dir}/${name} - - - - ${secrets}/${name}"
          "z ${facts.secrets.dir}/${name} 0400 ${owner} ${owner} -"
        ]) facts.secrets.files
      );

      users = lib.mkIf declareUsers {
        users = lib.genAttrs (lib.filter (u: u != "root") (lib.unique (lib.attrValues facts.secrets.files))) (
          user: {
            isSystemUser = true;
            group = user;
          }
        );
        groups = lib.genAttrs (lib.filter (u: u != "root") (lib.unique (lib.attrValues facts.secrets.files))) (
          _: { }
        );
      };
    };

  # A TLS-only front on facts.ports.https for nodes without the stack:
  # nginx with the fixtures' certificate (for ${domain}, signed by ca.pem)
  # and the key sops-nix would place, TLS 1.2 and 1.3 only. `tlsFrontVars`
  # are the target vars health-checks/security.toml reads for it.
  tlsFront = {
    services.nginx = {
      enable = true;
      recommendedTlsSettings = true;
      virtualHosts.${domain} = {
        onlySSL = true;
        listen = [
          {
            addr = "0.0.0.0";
            port = facts.ports.https;
            ssl = true;
          }
        ];
        sslCertificate = "${secrets}/tls_cert.pem";
        sslCertificateKey = "${facts.secrets.dir}/tls_key";
        locations."/".return = "200 ok";
      };
    };
  };
  tlsFrontVars = {
    host = domain;
    address = "127.0.0.1:${toString facts.ports.https}";
    url = "https://127.0.0.1:${toString facts.ports.https}";
    ca_file = "${secrets}/ca.pem";
  };

  # The common shape of a test node: console-only test VM, no DHCP client
  # (its UDP socket is not part of the P6 allow-list), the validator
  # installed as a unit that the test script starts.
  node =
    { modules }:
    {
      imports = [
        modules.rave-p6
        modules.spinup-smoke
      ];
      networking.useDHCP = false;
      services.spinup-smoke = {
        enable = true;
        package = spinup-smoke;
        startOnBoot = false;
        signingKeyFile = "${facts.secrets.dir}/spinup_signing_key";
      };
    };

  # Python for the test scripts: read a transcript and the outcome per check.
  pythonHelpers = ''
    import json

    OUT = "/var/lib/spinup-smoke/artifacts"
    PUBKEY = "${secrets}/spinup_signing_key.pub"

    def newest(machine, pattern, without="^$"):
        """Path of the newest artifact matching a shell glob in OUT."""
        path = machine.succeed(f"ls -t {OUT}/{pattern} | grep -v -e '{without}' | head -n1").strip()
        assert path, f"no artifact {pattern} in {OUT}"
        return path

    def transcript(machine):
        """The newest signed transcript (not its .intoto.json DSSE envelope)."""
        return newest(machine, "boot_transcript_*.json", without="intoto")

    def attestation(machine):
        """The newest in-toto statement in its DSSE envelope."""
        return newest(machine, "*.intoto.json")

    def outcomes(document):
        """Every object with an `id` and an outcome, as id -> outcome (lower case)."""
        found = {}
        def walk(value):
            if isinstance(value, dict):
                if isinstance(value.get("id"), str):
                    for key in ("outcome", "status", "result"):
                        if isinstance(value.get(key), str):
                            found[value["id"]] = value[key].lower()
                            break
                for v in value.values():
                    walk(v)
            elif isinstance(value, list):
                for v in value:
                    walk(v)
        walk(document)
        return found

    def load(machine, path):
        return json.loads(machine.succeed(f"cat {path}"))

    def exit_status(machine, command):
        status, output = machine.execute(command)
        print(output)
        return status

    def run_validator(machine):
        """Starts the validator unit; returns the exit status of spinup-smoke run."""
        machine.execute("systemctl start spinup-smoke.service")
        return int(machine.succeed("systemctl show -p ExecMainStatus --value spinup-smoke.service").strip())
  '';
in
{
  inherit
    secrets
    nodeProfiles
    module
    node
    pythonHelpers
    domain
    facts
    tlsFront
    tlsFrontVars
    ;
}
