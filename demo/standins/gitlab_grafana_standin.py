"""STAND-IN for GitLab and Grafana in the demo stack.

GitLab and Grafana cannot be installed on the machines this demo runs on, so
this small server answers their API shapes on two ports; the same
health-check profiles hit the real services in a RAVE deployment. It is not
GitLab and not Grafana, and says so in its log and in a header
(`X-Stand-In`).

What it answers comes from live state, not constants:
- GitLab's `/-/readiness?all=1` `db_check` and Grafana's `/api/health`
  `database` connect to the demo's PostgreSQL on every request, as the roles
  the real services use (`gitlab` on database gitlab, `grafana` on grafana),
  and run `SELECT 1`; when that fails they answer 503 as the real services
  do, with the error in GitLab's message.
- Runners are rows of `ci_runners` in database gitlab: registered with the
  instance's registration token (`POST /api/v4/runners`, as `gitlab-runner
  register` does), removed by `DELETE /api/v4/runners`; a runner is online
  while its last contact (registration, `/runners/verify`, `/jobs/request`)
  is under two hours old, as GitLab counts it.
- Projects are rows of `projects` in database gitlab (namespace `rave`):
  created (`POST /api/v4/projects`, a taken path refused as GitLab does),
  listed and searched (`GET /api/v4/projects?search=`), read by id or
  URL-encoded path (`GET /api/v4/projects/:id`), deleted (`DELETE
  /api/v4/projects/:id`, 202), all behind `PRIVATE-TOKEN`.
- Files, merge requests and pipelines of a project are kept in a JSON file.

    python gitlab_grafana_standin.py CONFIG.json

CONFIG.json: {"gitlab_port", "grafana_port", "token_file", "state_file",
              "idp_issuer", "external_url", "runner_registration_token_file",
              "postgres": {"host", "port"},
              "gitlab_db": {"user", "dbname", "password_file"},
              "grafana_db": {"user", "dbname", "password_file"}}
Passwords and tokens are read from files, never from the command line.
"""
import hashlib
import hmac
import json
import secrets
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

try:
    import psycopg2
except ImportError:
    sys.exit("STAND-IN: psycopg2 is missing: run it with the .venv's python (./scripts/setup.sh installs it)")

CONFIG = json.load(open(sys.argv[1]))
TOKEN = open(CONFIG["token_file"]).read().strip()
REGISTRATION_TOKEN = open(CONFIG["runner_registration_token_file"]).read().strip()
LOCK = threading.Lock()
# GitLab's Ci::Runner::ONLINE_CONTACT_TIMEOUT.
ONLINE_CONTACT_TIMEOUT = "2 hours"


def connect(db):
    """A new connection to the demo's PostgreSQL as `db`'s role (no pool:
    each answer reflects whether the database takes connections now)."""
    password = open(db["password_file"]).read().strip()
    return psycopg2.connect(host=CONFIG["postgres"]["host"], port=CONFIG["postgres"]["port"],
                            user=db["user"], password=password, dbname=db["dbname"],
                            connect_timeout=5, options="-c statement_timeout=5000",
                            application_name="stand-in")


def database_check(db):
    """None when `SELECT 1` answers 1 as `db`'s role, else the error."""
    try:
        conn = connect(db)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
                row = cur.fetchone()
            return None if row == (1,) else "SELECT 1 answered %r" % (row,)
        finally:
            conn.close()
    except psycopg2.Error as e:
        return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


RUNNERS_TABLE = """CREATE TABLE IF NOT EXISTS ci_runners (
    id bigserial PRIMARY KEY,
    token_digest text NOT NULL UNIQUE,
    description text NOT NULL DEFAULT '',
    active boolean NOT NULL DEFAULT true,
    contacted_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now())"""
PROJECTS_TABLE = """CREATE TABLE IF NOT EXISTS projects (
    id bigserial PRIMARY KEY,
    namespace text NOT NULL DEFAULT 'rave',
    name text NOT NULL,
    path text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (namespace, path))"""
NAMESPACE = "rave"
RUNNERS_READY = threading.Lock()
RUNNERS_CREATED = []


def runners_db():
    """A connection to database gitlab as role gitlab, with ci_runners and
    projects in it."""
    conn = connect(CONFIG["gitlab_db"])
    conn.autocommit = True
    if not RUNNERS_CREATED:
        with RUNNERS_READY:
            if not RUNNERS_CREATED:
                with conn.cursor() as cur:
                    cur.execute(RUNNERS_TABLE)
                    cur.execute(PROJECTS_TABLE)
                RUNNERS_CREATED.append(True)
    return conn


def project_json(row):
    pid, namespace, name, path, created_at = row
    return {"id": pid, "name": name, "path": path, "path_with_namespace": namespace + "/" + path,
            "name_with_namespace": namespace + " / " + name,
            "namespace": {"path": namespace, "full_path": namespace, "kind": "group"},
            "web_url": CONFIG["external_url"] + "/" + namespace + "/" + path,
            "default_branch": "main", "created_at": created_at.isoformat()}


PROJECT_COLUMNS = "id, namespace, name, path, created_at"


def project_sql(sql, args):
    """Runs `sql` on database gitlab; every row as GitLab's project JSON."""
    conn = runners_db()
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return [project_json(r) for r in cur.fetchall()] if cur.description else []
    finally:
        conn.close()


def find_project(pid):
    """The project with id `pid` or path `namespace%2Fpath`, or None."""
    if pid.isdigit():
        rows = project_sql("SELECT " + PROJECT_COLUMNS + " FROM projects WHERE id = %s", (int(pid),))
    else:
        full = unquote(pid)
        namespace, _, path = full.rpartition("/")
        rows = project_sql("SELECT " + PROJECT_COLUMNS + " FROM projects WHERE namespace = %s AND path = %s",
                           (namespace, path))
    return rows[0] if rows else None


def digest(token):
    return hashlib.sha256(token.encode()).hexdigest()


def list_runners(status):
    conn = runners_db()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT id, description, active, CASE WHEN contacted_at IS NULL THEN 'never_contacted' "
                "WHEN contacted_at > now() - interval '" + ONLINE_CONTACT_TIMEOUT + "' THEN 'online' "
                "ELSE 'offline' END FROM ci_runners ORDER BY id")
            rows = cur.fetchall()
    finally:
        conn.close()
    runners = [{"id": rid, "description": description, "active": active, "paused": not active,
                "is_shared": True, "runner_type": "instance_type", "name": "gitlab-runner",
                "online": state == "online", "status": state}
               for rid, description, active, state in rows]
    return [r for r in runners if status is None or r["status"] == status]


def register_runner(description):
    token = "glrt-" + secrets.token_urlsafe(20)
    conn = runners_db()
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO ci_runners (token_digest, description, contacted_at) "
                        "VALUES (%s, %s, now()) RETURNING id", (digest(token), description))
            rid = cur.fetchone()[0]
    finally:
        conn.close()
    return {"id": rid, "token": token, "token_expires_at": None}


def runner_sql(sql, token):
    """Runs `sql` (one %s: the token's digest; RETURNING id): the id of the
    runner it touched, or None."""
    conn = runners_db()
    try:
        with conn.cursor() as cur:
            cur.execute(sql, (digest(token),))
            row = cur.fetchone()
            return row[0] if row else None
    finally:
        conn.close()


def load_state():
    try:
        return json.load(open(CONFIG["state_file"]))
    except FileNotFoundError:
        return {"files": {}, "merge_requests": [], "pipelines": [], "next_id": 1}


def save_state(state):
    with open(CONFIG["state_file"], "w") as f:
        json.dump(state, f)


class Base(BaseHTTPRequestHandler):
    server_version = "stand-in"

    def log_message(self, fmt, *args):
        sys.stdout.write("%s %s\n" % (self.__class__.__name__, fmt % args))
        sys.stdout.flush()

    def reply(self, status, body, content_type="application/json", headers=None):
        data = body if isinstance(body, bytes) else (body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Stand-In", "stand-in answering the real service's API shapes, not the real service")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def json_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return {}
        if "json" in (self.headers.get("Content-Type") or ""):
            return json.loads(raw)
        return {k: v[0] for k, v in parse_qs(raw.decode()).items()}


class GitLab(Base):
    def authorized(self):
        return self.headers.get("PRIVATE-TOKEN") == TOKEN or self.headers.get("Authorization") == "Bearer " + TOKEN

    def do_GET(self):
        url = urlparse(self.path)
        path, query = url.path, parse_qs(url.query)
        if path == "/-/health":
            return self.reply(200, "GitLab OK", "text/plain")
        if path == "/-/readiness":
            # GitLab's shape: {"status", "<name>_check": [{"status", "message"}]},
            # 503 when one failed. The stand-in has no Redis or Gitaly, so it
            # reports only what it has: its own process and the database.
            checks = {"status": "ok"}
            if query.get("all") == ["1"]:
                error = database_check(CONFIG["gitlab_db"])
                if error is None:
                    checks["db_check"] = [{"status": "ok"}]
                else:
                    checks["status"] = "failed"
                    checks["db_check"] = [{"status": "failed", "message": "unexpected Db check result: " + error}]
            checks["master_check"] = [{"status": "ok"}]
            return self.reply(200 if checks["status"] == "ok" else 503, checks)
        if path == "/-/liveness":
            return self.reply(200, {"status": "ok"})
        if path == "/users/sign_in":
            return self.reply(200, (
                "<!DOCTYPE html><html><head><title>Sign in · GitLab</title></head><body>"
                "<form action=\"/users/sign_in\" method=\"post\"><input name=\"user[login]\"></form>"
                "<form action=\"/users/auth/openid_connect\" method=\"post\">"
                "<button data-testid=\"oidc-login-button\">Sign in with OpenID Connect</button></form>"
                "</body></html>"), "text/html; charset=utf-8")
        if not path.startswith("/api/v4/"):
            return self.reply(404, {"message": "404 Not Found"})
        if not self.authorized():
            return self.reply(401, {"message": "401 Unauthorized"})
        with LOCK:
            state = load_state()
        if path == "/api/v4/version":
            return self.reply(200, {"version": "17.5.2", "revision": "stand-in", "kas": {"enabled": False}, "enterprise": False})
        if path in ("/api/v4/runners", "/api/v4/runners/all"):
            try:
                return self.reply(200, list_runners(query.get("status", [None])[0]))
            except psycopg2.Error as e:
                self.log_message("runners: %s", str(e).strip())
                return self.reply(500, {"message": "500 Internal Server Error"})
        if path == "/api/v4/application/settings":
            return self.reply(200, {"signup_enabled": False, "password_authentication_enabled_for_web": False,
                                    "omniauth_enabled": True, "omniauth_providers": [{"name": "openid_connect", "label": "RAVE SSO",
                                    "args": {"issuer": CONFIG["idp_issuer"]}}]})
        try:
            return self.projects_get(path, query, state)
        except psycopg2.Error as e:
            self.log_message("projects: %s", str(e).strip())
            return self.reply(500, {"message": "500 Internal Server Error"})

    def projects_get(self, path, query, state):
        if path == "/api/v4/projects":
            # GitLab's `search`: a case-insensitive substring of the name or path.
            like = "%" + query.get("search", [""])[0].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            return self.reply(200, project_sql(
                "SELECT " + PROJECT_COLUMNS + " FROM projects WHERE name ILIKE %s OR path ILIKE %s ORDER BY id DESC",
                (like, like)))
        parts = path.split("/")
        if len(parts) >= 6 and parts[3] == "projects":
            project = find_project(parts[4])
            if project is None:
                return self.reply(404, {"message": "404 Project Not Found"})
            kind = parts[5]
            if kind == "merge_requests":
                return self.reply(200, [m for m in state["merge_requests"] if m["project_id"] == project["id"]])
            if kind == "pipelines":
                return self.reply(200, [p for p in state["pipelines"] if p["project_id"] == project["id"]])
            if kind == "repository" and len(parts) >= 8 and parts[6] == "files":
                key = "%s:%s" % (project["id"], parts[7].replace("%2F", "/"))
                if key in state["files"]:
                    return self.reply(200, state["files"][key])
                return self.reply(404, {"message": "404 File Not Found"})
        if len(parts) == 5 and parts[3] == "projects":
            project = find_project(parts[4])
            return self.reply(200, project) if project else self.reply(404, {"message": "404 Project Not Found"})
        return self.reply(404, {"message": "404 Not Found"})

    def runner_api(self, method, path):
        """The runner API (authenticated by runner tokens, not user tokens):
        register, verify, poll for jobs, unregister."""
        body = self.json_body()
        token = str(body.get("token") or "")
        if not token:
            return self.reply(400, {"error": "token is missing"})
        try:
            if path == "/api/v4/runners" and method == "POST":
                if not hmac.compare_digest(token, REGISTRATION_TOKEN):
                    return self.reply(403, {"message": "403 Forbidden"})
                return self.reply(201, register_runner(str(body.get("description") or "")))
            if method == "DELETE":
                rid = runner_sql("DELETE FROM ci_runners WHERE token_digest = %s RETURNING id", token)
                return self.reply(204, b"") if rid is not None else self.reply(403, {"message": "403 Forbidden"})
            rid = runner_sql("UPDATE ci_runners SET contacted_at = now() WHERE token_digest = %s RETURNING id", token)
            if rid is None:
                return self.reply(403, {"message": "403 Forbidden"})
            if path.endswith("/verify"):
                return self.reply(200, {"id": rid, "token": token, "token_expires_at": None})
            # No job queue: a poll gets GitLab's "no job for you" answer.
            return self.reply(204, b"")
        except psycopg2.Error as e:
            self.log_message("runner api: %s", str(e).strip())
            return self.reply(500, {"message": "500 Internal Server Error"})

    def do_DELETE(self):
        path = urlparse(self.path).path
        if path == "/api/v4/runners":
            return self.runner_api("DELETE", path)
        parts = path.split("/")
        if len(parts) == 5 and parts[:4] == ["", "api", "v4", "projects"]:
            if not self.authorized():
                return self.reply(401, {"message": "401 Unauthorized"})
            try:
                project = find_project(parts[4])
                if project is not None:
                    project_sql("DELETE FROM projects WHERE id = %s", (project["id"],))
            except psycopg2.Error as e:
                self.log_message("projects: %s", str(e).strip())
                return self.reply(500, {"message": "500 Internal Server Error"})
            if project is None:
                return self.reply(404, {"message": "404 Project Not Found"})
            # GitLab schedules the deletion and answers 202.
            return self.reply(202, {"message": "202 Accepted"})
        return self.reply(404, {"message": "404 Not Found"})

    def do_POST(self):
        path = urlparse(self.path).path
        if path in ("/api/v4/runners", "/api/v4/runners/verify", "/api/v4/jobs/request"):
            return self.runner_api("POST", path)
        if not path.startswith("/api/v4/"):
            return self.reply(404, {"message": "404 Not Found"})
        if not self.authorized():
            return self.reply(401, {"message": "401 Unauthorized"})
        body = self.json_body()
        with LOCK:
            state = load_state()
            new_id = state["next_id"]
            state["next_id"] += 1
            parts = path.split("/")
            if path == "/api/v4/projects":
                name = str(body.get("name") or body.get("path") or "")
                project_path = str(body.get("path") or name)
                if not name:
                    return self.reply(400, {"message": "name is missing"})
                try:
                    rows = project_sql(
                        "INSERT INTO projects (namespace, name, path) VALUES (%s, %s, %s) "
                        "ON CONFLICT (namespace, path) DO NOTHING RETURNING " + PROJECT_COLUMNS,
                        (NAMESPACE, name, project_path))
                except psycopg2.Error as e:
                    self.log_message("projects: %s", str(e).strip())
                    return self.reply(500, {"message": "500 Internal Server Error"})
                if not rows:
                    return self.reply(400, {"message": {"name": ["has already been taken"], "path": ["has already been taken"]}})
                return self.reply(201, rows[0])
            elif len(parts) >= 6 and parts[3] == "projects":
                project_id = int(parts[4]) if parts[4].isdigit() else None
                try:
                    found = project_id is not None and find_project(parts[4]) is not None
                except psycopg2.Error:
                    found = False
                if not found:
                    return self.reply(404, {"message": "404 Project Not Found"})
                if parts[5] == "merge_requests":
                    created = {"id": new_id, "iid": new_id, "project_id": project_id, "title": body.get("title", ""),
                               "source_branch": body.get("source_branch"), "target_branch": body.get("target_branch", "main"), "state": "opened"}
                    state["merge_requests"].append(created)
                elif parts[5] == "pipeline":
                    created = {"id": new_id, "project_id": project_id, "ref": body.get("ref", "main"), "status": "created"}
                    state["pipelines"].append(created)
                elif parts[5] == "repository" and len(parts) >= 8 and parts[6] == "files":
                    file_path = parts[7].replace("%2F", "/")
                    created = {"file_path": file_path, "branch": body.get("branch", "main"), "content": body.get("content", "")}
                    state["files"]["%s:%s" % (project_id, file_path)] = created
                else:
                    return self.reply(404, {"message": "404 Not Found"})
            else:
                return self.reply(404, {"message": "404 Not Found"})
            save_state(state)
        return self.reply(201, created)


class Grafana(Base):
    def do_GET(self):
        path = urlparse(self.path).path
        if path == "/api/health":
            # Grafana's shape: "database" is "ok", or "failing" with 503.
            error = database_check(CONFIG["grafana_db"])
            if error is not None:
                self.log_message("database: %s", error)
            return self.reply(200 if error is None else 503,
                              {"commit": "stand-in", "database": "ok" if error is None else "failing", "version": "11.3.0"})
        if path == "/api/frontend/settings":
            return self.reply(200, {"oauth": {"generic_oauth": {"name": "RAVE SSO", "icon": "signin"}},
                                    "disableLoginForm": True, "authProxyEnabled": False})
        if path == "/login/generic_oauth":
            location = CONFIG["idp_issuer"] + "/auth?client_id=grafana&response_type=code&scope=openid%20profile%20email"
            return self.reply(302, "", "text/html", {"Location": location})
        if path == "/login":
            return self.reply(200, "<html><a href=\"/login/generic_oauth\">Sign in with RAVE SSO</a></html>", "text/html")
        return self.reply(404, {"message": "Not found"})


def serve(port, handler):
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


if __name__ == "__main__":
    serve(CONFIG["gitlab_port"], GitLab)
    serve(CONFIG["grafana_port"], Grafana)
    print("STAND-IN: API shapes of GitLab (port %d) and Grafana (port %d), answered from the demo's PostgreSQL; not the real services"
          % (CONFIG["gitlab_port"], CONFIG["grafana_port"]), flush=True)
    threading.Event().wait()
