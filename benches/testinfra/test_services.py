"""The services phase written the way a testinfra user would write it:
checks equivalent to health-checks/*.toml, run against the same demo stack
(target file in SPINUP_TARGET). Used only by benches/services.sh to compare
wall time with `spinup-smoke run --phase services`.
"""
import json
import os
import shlex
import tomllib

import pytest

TARGET = tomllib.load(open(os.environ["SPINUP_TARGET"], "rb"))
V = TARGET["vars"]


def var(path):
    node = V
    for part in path.split("."):
        node = node[part]
    return str(node)


def secret(name):
    return open(TARGET["secrets"][name]["file"]).read().strip()


def psql(host, sql, user=None, password=None, db="postgres"):
    user = user or var("postgres.admin_user")
    password = password or secret("postgres_admin_password")
    cmd = "psql -X -A -t -h {} -p {} -U {} -d {} -c {}".format(
        var("postgres.host"), var("postgres.port"), user, db, shlex.quote(sql))
    return host.run("PGPASSWORD={} {}".format(shlex.quote(password), cmd))


def curl(host, url, *args):
    return host.run("curl -sS -m 10 -o /dev/stdout -w '\\n%{{http_code}}' {} {}".format(
        " ".join(shlex.quote(a) for a in args), shlex.quote(url)))


def status_and_body(result):
    body, _, code = result.stdout.rpartition("\n")
    return int(code or 0), body


# postgres.toml
def test_postgres_reachable(host):
    assert psql(host, "select 1").rc == 0

def test_postgres_version(host):
    assert int(psql(host, "show server_version_num").stdout.strip()) >= 120000

def test_postgres_databases(host):
    names = psql(host, "select datname from pg_database").stdout.split()
    assert {"gitlab", "synapse", "grafana"} <= set(names)

def test_postgres_roles(host):
    names = psql(host, "select rolname from pg_roles where rolcanlogin").stdout.split()
    assert {"gitlab", "synapse", "grafana"} <= set(names)

@pytest.mark.parametrize("role", ["gitlab", "synapse", "grafana"])
def test_postgres_role_connect(host, role):
    assert psql(host, "select 1", user=role, password=secret(role + "_db_password"), db=role).rc == 0

def test_postgres_synapse_collation(host):
    out = psql(host, "select datcollate, datctype from pg_database where datname='synapse'").stdout.strip()
    assert out == "C|C"

def test_postgres_connections(host):
    used = int(psql(host, "select count(*) from pg_stat_activity").stdout)
    limit = int(psql(host, "show max_connections").stdout)
    assert used < 0.8 * limit

def test_postgres_long_queries(host):
    out = psql(host, "select count(*) from pg_stat_activity where state='active' and now()-query_start > interval '5 minutes'")
    assert int(out.stdout) == 0

@pytest.mark.parametrize("limit", [0.8, 0.9])
def test_postgres_disk(host, limit):
    out = host.run("df -P -k {}".format(shlex.quote(var("postgres.data_dir")))).stdout.splitlines()[-1].split()
    assert int(out[2]) / int(out[1]) < limit


# matrix.toml
def test_synapse_health(host):
    code, body = status_and_body(curl(host, var("synapse.url") + "/health"))
    assert code == 200 and "OK" in body

def test_synapse_client_versions(host):
    code, body = status_and_body(curl(host, var("synapse.url") + "/_matrix/client/versions"))
    assert {"v1.1", "v1.11"} <= set(json.loads(body)["versions"])

def test_synapse_server_version(host):
    code, body = status_and_body(curl(host, var("synapse.url") + "/_synapse/admin/v1/server_version"))
    assert code == 200 and json.loads(body)["server_version"]

def test_synapse_registration_closed(host):
    code, _ = status_and_body(curl(host, var("synapse.url") + "/_matrix/client/v3/register",
                                   "-X", "POST", "-d", '{"username":"probe","password":"x","auth":{"type":"m.login.dummy"}}'))
    assert code in (403, 404, 405)

def test_synapse_federation_disabled(host):
    for path in ("/_matrix/federation/v1/version", "/_matrix/key/v2/server"):
        code, _ = status_and_body(curl(host, var("synapse.url") + path))
        assert 400 <= code < 500

def login(host):
    body = json.dumps({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": var("synapse.operator_user")},
                       "password": secret("synapse_operator_password")})
    code, out = status_and_body(curl(host, var("synapse.url") + "/_matrix/client/v3/login", "-X", "POST", "-d", body))
    assert code == 200
    return json.loads(out)["access_token"]

def test_synapse_operator_login(host):
    token = login(host)
    code, out = status_and_body(curl(host, var("synapse.url") + "/_matrix/client/v3/account/whoami", "-H", "Authorization: Bearer " + token))
    assert json.loads(out)["user_id"].startswith("@" + var("synapse.operator_user") + ":")
    curl(host, var("synapse.url") + "/_matrix/client/v3/logout", "-X", "POST", "-H", "Authorization: Bearer " + token)

def test_synapse_media_roundtrip(host, tmp_path):
    token = login(host)
    data = os.urandom(4096)
    (tmp_path / "m").write_bytes(data)
    code, out = status_and_body(curl(host, var("synapse.url") + "/_matrix/media/v3/upload", "-X", "POST",
                                     "-H", "Authorization: Bearer " + token, "-H", "Content-Type: application/octet-stream",
                                     "--data-binary", "@" + str(tmp_path / "m")))
    server, media = json.loads(out)["content_uri"][len("mxc://"):].split("/")
    got = host.run("curl -sS -m 10 -H {} {}".format(shlex.quote("Authorization: Bearer " + token),
                   shlex.quote("{}/_matrix/client/v1/media/download/{}/{}".format(var("synapse.url"), server, media))))
    assert got.stdout_bytes == data
    curl(host, var("synapse.url") + "/_matrix/client/v3/logout", "-X", "POST", "-H", "Authorization: Bearer " + token)

def test_synapse_sso_advertised(host):
    code, out = status_and_body(curl(host, var("synapse.url") + "/_matrix/client/v3/login"))
    assert any(f["type"] == "m.login.sso" for f in json.loads(out)["flows"])


# prometheus.toml
def test_prometheus_ready(host):
    assert status_and_body(curl(host, var("prometheus.url") + "/-/ready"))[0] == 200

def test_prometheus_targets_up(host):
    _, out = status_and_body(curl(host, var("prometheus.url") + "/api/v1/targets"))
    targets = json.loads(out)["data"]["activeTargets"]
    assert targets and all(t["health"] == "up" for t in targets)

def test_prometheus_synapse_metrics(host):
    _, out = status_and_body(curl(host, var("prometheus.url") + "/api/v1/query", "--data-urlencode", "query=count({__name__=~\"synapse_.*\"})"))
    assert float(json.loads(out)["data"]["result"][0]["value"][1]) > 0


# gitlab.toml and grafana.toml (stand-ins in the demo)
@pytest.mark.parametrize("path,needle", [("/-/health", "GitLab OK"), ("/-/readiness?all=1", "ok"), ("/-/liveness", "ok"),
                                         ("/users/sign_in", "sign"), ("/users/sign_in", "openid_connect")])
def test_gitlab_pages(host, path, needle):
    code, body = status_and_body(curl(host, var("gitlab.url") + path))
    assert code == 200 and needle in body

def test_gitlab_api_version(host):
    code, body = status_and_body(curl(host, var("gitlab.url") + "/api/v4/version", "-H", "PRIVATE-TOKEN: " + secret("gitlab_token")))
    assert "version" in json.loads(body)

def test_gitlab_runner_online(host):
    code, body = status_and_body(curl(host, var("gitlab.url") + "/api/v4/runners/all?status=online", "-H", "PRIVATE-TOKEN: " + secret("gitlab_token")))
    assert json.loads(body)

def test_grafana_health(host):
    code, body = status_and_body(curl(host, var("grafana.url") + "/api/health"))
    assert json.loads(body)["database"] == "ok"

def test_grafana_oauth(host):
    code, _ = status_and_body(curl(host, var("grafana.url") + "/login/" + var("grafana.oauth_provider")))
    assert code == 302


# networking.toml
def test_interfaces_up(host):
    assert any(i["operstate"] in ("UP", "UNKNOWN") for i in json.loads(host.run("ip -j link").stdout))

def test_default_route(host):
    assert json.loads(host.run("ip -j route").stdout)

def test_dns_localhost(host):
    assert "127.0.0.1" in host.addr("localhost").ip_addresses

def test_postgres_port(host):
    assert host.addr(var("postgres.host")).port(int(var("postgres.port"))).is_reachable

def test_tls_front_port(host):
    h, p = var("tls_front.address").rsplit(":", 1)
    assert host.addr(h).port(int(p)).is_reachable

def test_tls_front_certificate(host):
    out = host.run("echo | openssl s_client -connect {} -servername {} -CAfile {} -verify_return_error 2>&1 | openssl x509 -noout -checkend 1209600".format(
        var("tls_front.address"), var("tls_front.host"), var("tls_front.ca_file")))
    assert out.rc == 0
