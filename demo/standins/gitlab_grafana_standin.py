"""STAND-IN for GitLab and Grafana in the demo stack.

GitLab and Grafana cannot be installed on the machines this demo runs on, so
this small server replays their recorded API shapes on two ports; the same
health-check profiles hit the real services in a RAVE deployment. It is not
GitLab and not Grafana, and says so in its log and in a header
(`X-Stand-In`). Projects, files, merge requests and pipelines are kept as
real state in a JSON file.

    python gitlab_grafana_standin.py CONFIG.json

CONFIG.json: {"gitlab_port", "grafana_port", "token_file", "state_file",
              "idp_issuer", "external_url"}
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

CONFIG = json.load(open(sys.argv[1]))
TOKEN = open(CONFIG["token_file"]).read().strip()
LOCK = threading.Lock()


def load_state():
    try:
        return json.load(open(CONFIG["state_file"]))
    except FileNotFoundError:
        return {"projects": [], "files": {}, "merge_requests": [], "pipelines": [], "next_id": 1}


def save_state(state):
    with open(CONFIG["state_file"], "w") as f:
        json.dump(state, f)


class Base(BaseHTTPRequestHandler):
    server_version = "stand-in"

    def log_message(self, fmt, *args):
        sys.stdout.write("%s %s\n" % (self.__class__.__name__, fmt % args))
        sys.stdout.flush()

    def reply(self, status, body, content_type="application/json", headers=None):
        data = body if isinstance(body, bytes) else (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Stand-In", "recorded API shapes, not the real service")
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
            checks = {"status": "ok", "master_check": [{"status": "ok"}]}
            if query.get("all") == ["1"]:
                for name in ("db_check", "cache_check", "queues_check", "shared_state_check", "gitaly_check"):
                    checks[name] = [{"status": "ok"}]
            return self.reply(200, checks)
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
        if path == "/api/v4/runners":
            runners = [{"id": 1, "description": "rave-sandbox-runner", "active": True, "paused": False,
                        "is_shared": True, "runner_type": "instance_type", "online": True, "status": "online"}]
            return self.reply(200, [r for r in runners if query.get("status", ["online"])[0] == r["status"]])
        if path == "/api/v4/application/settings":
            return self.reply(200, {"signup_enabled": False, "password_authentication_enabled_for_web": False,
                                    "omniauth_enabled": True, "omniauth_providers": [{"name": "openid_connect", "label": "RAVE SSO",
                                    "args": {"issuer": CONFIG["idp_issuer"]}}]})
        if path == "/api/v4/projects":
            return self.reply(200, state["projects"])
        parts = path.split("/")
        if len(parts) >= 6 and parts[3] == "projects":
            pid = parts[4]
            project = next((p for p in state["projects"] if str(p["id"]) == pid or p["path_with_namespace"] == pid.replace("%2F", "/")), None)
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
            pid = parts[4]
            project = next((p for p in state["projects"] if str(p["id"]) == pid or p["path_with_namespace"] == pid.replace("%2F", "/")), None)
            return self.reply(200, project) if project else self.reply(404, {"message": "404 Project Not Found"})
        return self.reply(404, {"message": "404 Not Found"})

    def do_POST(self):
        path = urlparse(self.path).path
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
                name = body.get("name") or body.get("path")
                if not name:
                    return self.reply(400, {"message": "name is missing"})
                if any(p["path"] == name for p in state["projects"]):
                    return self.reply(400, {"message": {"name": ["has already been taken"]}})
                created = {"id": new_id, "name": name, "path": name, "path_with_namespace": "rave/" + name,
                           "web_url": CONFIG["external_url"] + "/rave/" + name, "default_branch": "main"}
                state["projects"].append(created)
            elif len(parts) >= 6 and parts[3] == "projects":
                project_id = int(parts[4]) if parts[4].isdigit() else None
                if not any(p["id"] == project_id for p in state["projects"]):
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
            return self.reply(200, {"commit": "stand-in", "database": "ok", "version": "11.3.0"})
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
    print("STAND-IN: recorded API shapes of GitLab (port %d) and Grafana (port %d); not the real services"
          % (CONFIG["gitlab_port"], CONFIG["grafana_port"]), flush=True)
    threading.Event().wait()
