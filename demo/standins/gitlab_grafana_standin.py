"""STAND-IN for GitLab and Grafana in the demo stack.

GitLab and Grafana cannot be installed on the machines this demo runs on, so
this server answers their API shapes on two ports; the same health-check
profiles hit the real services in a RAVE deployment. It is not GitLab and not
Grafana, and says so in its log and in a header (`X-Stand-In`) on every
answer, git's smart HTTP included.

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
- Projects are rows of `projects` (namespace `rave`), each with a bare git
  repository `<git_root>/rave/<path>.git` made with it and removed with it.
  Commits (`POST .../repository/commits`), branches, raw files and merges
  are git itself (plumbing on the bare repository with a temporary index;
  `git merge-tree` and a two-parent commit, i.e. `git merge --no-ff`),
  every git call with a deadline, writes serialised per project.
- Git smart HTTP (`/rave/<path>.git/info/refs`, `git-upload-pack`,
  `git-receive-pack`) is `git http-backend` run as a CGI behind GitLab's
  basic auth (the user token reads and pushes; `gitlab-ci-token` with the
  token of a running job of the project reads).
- Merge requests, pipelines and jobs are rows of `merge_requests`,
  `ci_pipelines` and `ci_builds`. A branch that gets new commits (the
  commits API, a merge, a push) gets a pipeline when `.gitlab-ci.yml` is at
  its new head: jobs from the file (PyYAML; a bad file makes a failed
  pipeline with `yaml_errors`, as GitLab does), run by whatever runner takes
  them through the runner API (`/api/v4/jobs/request`, `PUT /jobs/:id`,
  `PATCH /jobs/:id/trace`); statuses follow the jobs. In the demo that is
  rave-runner (demo/standins/runner.py). Of `.gitlab-ci.yml` it reads
  `stages`, `variables`, `image`, `before_script` (top level or `default`)
  and each job's `script`, `stage`, `image`, `variables`, `before_script`;
  other keywords (`rules`, `needs`, `workflow`...) are not applied, and
  `include` is refused as a yaml error.

    python gitlab_grafana_standin.py CONFIG.json

CONFIG.json: {"gitlab_port", "grafana_port", "token_file", "git_root",
              "git_base_url", "idp_issuer", "external_url",
              "runner_registration_token_file",
              "postgres": {"host", "port"},
              "gitlab_db": {"user", "dbname", "password_file"},
              "grafana_db": {"user", "dbname", "password_file"}}
Passwords and tokens are read from files, never from the command line.
"""
import base64
import contextlib
import ctypes
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlparse

try:
    import psycopg2
    import yaml
except ImportError as missing:
    sys.exit("STAND-IN: %s: run it with the .venv's python (./scripts/setup.sh installs psycopg2 and pyyaml)"
             % missing)

CONFIG = json.load(open(sys.argv[1]))
TOKEN = open(CONFIG["token_file"]).read().strip()
REGISTRATION_TOKEN = open(CONFIG["runner_registration_token_file"]).read().strip()
GIT_ROOT = os.path.abspath(CONFIG["git_root"])
GIT_BASE_URL = CONFIG["git_base_url"].rstrip("/")
# GitLab's Ci::Runner::ONLINE_CONTACT_TIMEOUT.
ONLINE_CONTACT_TIMEOUT = "2 hours"
NAMESPACE = "rave"
AUTHOR = ("RAVE Agent", "agent@rave.local")
ZERO_SHA = "0" * 40
# Deadlines: a plumbing call, a whole smart HTTP exchange.
GIT_TIMEOUT = 30
CGI_TIMEOUT = 600
STAND_IN = "stand-in answering the real service's API shapes, not the real service"


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


TABLES = [
    """CREATE TABLE IF NOT EXISTS ci_runners (
    id bigserial PRIMARY KEY,
    token_digest text NOT NULL UNIQUE,
    description text NOT NULL DEFAULT '',
    active boolean NOT NULL DEFAULT true,
    contacted_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now())""",
    """CREATE TABLE IF NOT EXISTS projects (
    id bigserial PRIMARY KEY,
    namespace text NOT NULL DEFAULT 'rave',
    name text NOT NULL,
    path text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (namespace, path))""",
    """CREATE TABLE IF NOT EXISTS merge_requests (
    id bigserial PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES projects ON DELETE CASCADE,
    iid integer NOT NULL,
    title text NOT NULL,
    description text NOT NULL DEFAULT '',
    state text NOT NULL DEFAULT 'opened',
    source_branch text NOT NULL,
    target_branch text NOT NULL,
    sha text,
    merge_commit_sha text,
    merged_at timestamptz,
    closed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, iid))""",
    """CREATE TABLE IF NOT EXISTS ci_pipelines (
    id bigserial PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES projects ON DELETE CASCADE,
    iid integer NOT NULL,
    sha text NOT NULL,
    before_sha text NOT NULL,
    ref text NOT NULL,
    status text NOT NULL DEFAULT 'created',
    source text NOT NULL DEFAULT 'push',
    yaml_errors text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    UNIQUE (project_id, iid))""",
    """CREATE TABLE IF NOT EXISTS ci_builds (
    id bigserial PRIMARY KEY,
    pipeline_id bigint NOT NULL REFERENCES ci_pipelines ON DELETE CASCADE,
    project_id bigint NOT NULL REFERENCES projects ON DELETE CASCADE,
    name text NOT NULL,
    stage text NOT NULL,
    stage_idx integer NOT NULL,
    status text NOT NULL DEFAULT 'pending',
    script jsonb NOT NULL,
    image text,
    variables jsonb NOT NULL DEFAULT '[]',
    timeout integer NOT NULL DEFAULT 3600,
    token_digest text UNIQUE,
    trace bytea NOT NULL DEFAULT ''::bytea,
    runner_id bigint REFERENCES ci_runners ON DELETE SET NULL,
    exit_code integer,
    failure_reason text,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz)""",
]
TABLES_READY = threading.Lock()
TABLES_CREATED = []
# Job and pipeline status changes, one at a time (one stand-in process).
JOBS_LOCK = threading.Lock()
PROJECT_LOCKS = {}
PROJECT_LOCKS_GUARD = threading.Lock()


def gitlab_db():
    """A connection to database gitlab as role gitlab, with the tables in it."""
    conn = connect(CONFIG["gitlab_db"])
    conn.autocommit = True
    if not TABLES_CREATED:
        with TABLES_READY:
            if not TABLES_CREATED:
                with conn.cursor() as cur:
                    for table in TABLES:
                        cur.execute(table)
                TABLES_CREATED.append(True)
    return conn


@contextlib.contextmanager
def transaction():
    """A cursor in one transaction on database gitlab: committed at the end,
    rolled back on an exception."""
    conn = gitlab_db()
    conn.autocommit = False
    try:
        with conn.cursor() as cur:
            yield cur
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()


def query(sql, args=()):
    """Every row `sql` answers (autocommit)."""
    with transaction() as cur:
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else []


def project_lock(pid):
    """The lock serialising writes to project `pid`'s repository."""
    with PROJECT_LOCKS_GUARD:
        return PROJECT_LOCKS.setdefault(pid, threading.Lock())


def iso(t):
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if t else None


def digest(token):
    return hashlib.sha256(token.encode()).hexdigest()


# ---------------------------------------------------------------- projects

def project_json(row):
    pid, namespace, name, path, created_at = row
    return {"id": pid, "name": name, "path": path, "path_with_namespace": namespace + "/" + path,
            "name_with_namespace": namespace + " / " + name,
            "namespace": {"path": namespace, "full_path": namespace, "kind": "group"},
            "web_url": CONFIG["external_url"] + "/" + namespace + "/" + path,
            "http_url_to_repo": GIT_BASE_URL + "/" + namespace + "/" + path + ".git",
            "default_branch": "main", "created_at": iso(created_at)}


PROJECT_COLUMNS = "id, namespace, name, path, created_at"


def project_sql(sql, args):
    """Runs `sql` on database gitlab; every row as GitLab's project JSON."""
    return [project_json(r) for r in query(sql, args)]


def find_project(pid):
    """The project with id `pid` or path `namespace%2Fpath`, or None."""
    if pid.isdigit():
        rows = project_sql("SELECT " + PROJECT_COLUMNS + " FROM projects WHERE id = %s", (int(pid),))
    else:
        namespace, _, path = unquote(pid).rpartition("/")
        rows = project_sql("SELECT " + PROJECT_COLUMNS + " FROM projects WHERE namespace = %s AND path = %s",
                           (namespace, path))
    return rows[0] if rows else None


# GitLab's path rule (Gitlab::PathRegex.project_path_format_regex).
PATH_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9_.-]*$")
PATH_MESSAGE = ("can contain only letters, digits, '_', '-' and '.'. Cannot start with '-', "
                "end in '.git' or end in '.atom'")


def valid_path(path):
    return bool(PATH_RE.match(path)) and not path.endswith((".git", ".atom")) and len(path) <= 255


def repo_dir(project):
    return os.path.join(GIT_ROOT, project["namespace"]["path"], project["path"] + ".git")


# --------------------------------------------------------------------- git

def die_with_parent():
    """preexec_fn: the child gets SIGKILL when this process dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class GitError(Exception):
    pass


def git(repo, *args, stdin=None, env=None, check=True):
    """Runs `git args` on the bare repository `repo` within GIT_TIMEOUT;
    (exit code, stdout bytes). A non-zero exit raises GitError unless
    check is false."""
    full_env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1",
                    GIT_AUTHOR_NAME=AUTHOR[0], GIT_AUTHOR_EMAIL=AUTHOR[1],
                    GIT_COMMITTER_NAME=AUTHOR[0], GIT_COMMITTER_EMAIL=AUTHOR[1])
    full_env.update(env or {})
    try:
        done = subprocess.run(["git", "--git-dir", repo] + list(args), input=stdin, capture_output=True,
                              timeout=GIT_TIMEOUT, env=full_env, preexec_fn=die_with_parent)
    except subprocess.TimeoutExpired:
        raise GitError("git %s did not finish within %ds" % (args[0], GIT_TIMEOUT))
    if check and done.returncode != 0:
        raise GitError("git %s: %s" % (args[0], done.stderr.decode(errors="replace").strip()[:500]))
    return done.returncode, done.stdout


def git_out(repo, *args, **kw):
    return git(repo, *args, **kw)[1].decode(errors="replace").strip()


def branch_head(repo, branch):
    """The commit `branch` points at, or None."""
    if not branch or not valid_branch(repo, branch):
        return None
    code, out = git(repo, "rev-parse", "--verify", "-q", "refs/heads/" + branch + "^{commit}", check=False)
    return out.decode().strip() if code == 0 else None


def valid_branch(repo, branch):
    return git(repo, "check-ref-format", "--branch", branch, check=False)[0] == 0 and not branch.startswith("-")


def branch_heads(repo):
    """{branch: sha} of every branch."""
    out = git_out(repo, "for-each-ref", "--format=%(refname:strip=2) %(objectname)", "refs/heads/")
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def resolve(repo, ref):
    """The commit a branch, tag or sha names, or None."""
    if not ref or ref.startswith("-"):
        return None
    code, out = git(repo, "rev-parse", "--verify", "-q", ref + "^{commit}", check=False)
    return out.decode().strip() if code == 0 else None


def default_branch(repo):
    code, out = git(repo, "symbolic-ref", "--short", "HEAD", check=False)
    return out.decode().strip() if code == 0 else "main"


def read_blob(repo, commit, path):
    """The bytes of `path` at `commit`, or None."""
    code, out = git(repo, "cat-file", "blob", commit + ":" + path, check=False)
    return out if code == 0 else None


def commit_json(project, repo, sha):
    fields = git(repo, "show", "-s", "--format=%H%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B",
                 sha)[1].decode(errors="replace").split("\x00")
    message = fields[8].rstrip("\n") + "\n" if fields[8].strip() else ""
    return {"id": fields[0], "short_id": fields[0][:8], "title": message.split("\n", 1)[0],
            "message": message, "parent_ids": fields[1].split(), "author_name": fields[2],
            "author_email": fields[3], "authored_date": fields[4], "committer_name": fields[5],
            "committer_email": fields[6], "committed_date": fields[7], "created_at": fields[7],
            "web_url": project["web_url"] + "/-/commit/" + fields[0]}


def init_repository(project):
    """A bare repository for `project`, branch main, pushes over HTTP allowed."""
    repo = repo_dir(project)
    os.makedirs(os.path.dirname(repo), exist_ok=True)
    if os.path.exists(repo):
        shutil.rmtree(repo)
    try:
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", repo], check=True, capture_output=True,
                       timeout=GIT_TIMEOUT, preexec_fn=die_with_parent)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        raise GitError("git init: %s" % e)
    git(repo, "config", "http.receivepack", "true")
    return repo


class BadRequest(Exception):
    """An answer other than success: status and GitLab's body."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.body = status, {"message": message}


def valid_file_path(path):
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and all(p not in ("", ".", "..", ".git") for p in parts) \
        and "\x00" not in path


def commit_actions(repo, branch, start_branch, message, actions, author=AUTHOR):
    """Applies `actions` on `branch` (made from `start_branch` when new) as
    one commit; (new sha, old sha or ZERO_SHA). Call with the project lock."""
    if not branch or not valid_branch(repo, branch):
        raise BadRequest(400, "branch is missing" if not branch else "Branch name is invalid")
    if not message:
        raise BadRequest(400, "commit_message is missing")
    if not isinstance(actions, list) or not actions:
        raise BadRequest(400, "actions is missing")
    old = branch_head(repo, branch)
    parent = old or branch_head(repo, start_branch)
    if parent is None and branch_heads(repo):
        raise BadRequest(400, "You can only create or edit files when you are on a branch")
    with tempfile.TemporaryDirectory(prefix="stand-in-index-") as tmp:
        env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
        if parent:
            git(repo, "read-tree", parent, env=env)
            files = set(git(repo, "ls-tree", "-r", "--name-only", "-z", parent)[1].decode().split("\x00")) - {""}
        else:
            git(repo, "read-tree", "--empty", env=env)
            files = set()
        for i, action in enumerate(actions):
            if not isinstance(action, dict):
                raise BadRequest(400, "actions[%d] is invalid" % i)
            kind, path = action.get("action"), action.get("file_path")
            if kind not in ("create", "update", "delete"):
                raise BadRequest(400, "actions[%d][action] does not have a valid value" % i)
            if not isinstance(path, str) or not valid_file_path(path):
                raise BadRequest(400, "actions[%d][file_path] is invalid" % i)
            if kind == "create" and path in files:
                raise BadRequest(400, "A file with this name already exists")
            if kind in ("update", "delete") and path not in files:
                raise BadRequest(400, "A file with this name doesn't exist")
            if kind == "delete":
                git(repo, "update-index", "--force-remove", "--", path, env=env)
                files.discard(path)
                continue
            content = action.get("content") or ""
            if not isinstance(content, str):
                raise BadRequest(400, "actions[%d][content] is invalid" % i)
            if action.get("encoding") == "base64":
                try:
                    data = base64.b64decode(content, validate=True)
                except ValueError:
                    raise BadRequest(400, "actions[%d][content] is not valid base64" % i)
            else:
                data = content.encode()
            blob = git(repo, "hash-object", "-w", "--stdin", stdin=data)[1].decode().strip()
            if any(f.startswith(path + "/") for f in files) or any(path.startswith(f + "/") for f in files):
                raise BadRequest(400, "A directory or file with this name already exists")
            git(repo, "update-index", "--add", "--cacheinfo", "100644,%s,%s" % (blob, path), env=env)
            files.add(path)
        tree = git_out(repo, "write-tree", env=env)
    names = {"GIT_AUTHOR_NAME": author[0], "GIT_AUTHOR_EMAIL": author[1]}
    sha = git_out(repo, "commit-tree", tree, *(["-p", parent] if parent else []), "-F", "-",
                  stdin=message.encode(), env=names)
    git(repo, "update-ref", "refs/heads/" + branch, sha, old or ZERO_SHA)
    return sha, old or ZERO_SHA


def merge_no_ff(repo, source, target, message):
    """A merge commit of `source` into `target` (as `git merge --no-ff`);
    the new target head, or None on a conflict. Call with the project lock."""
    ours, theirs = branch_head(repo, target), branch_head(repo, source)
    if ours is None or theirs is None:
        return None
    code, out = git(repo, "merge-tree", "--write-tree", "--no-messages", ours, theirs, check=False)
    if code != 0:
        return None
    tree = out.decode().split("\n", 1)[0].strip()
    sha = git_out(repo, "commit-tree", tree, "-p", ours, "-p", theirs, "-F", "-", stdin=message.encode())
    git(repo, "update-ref", "refs/heads/" + target, sha, ours)
    return sha


# --------------------------------------------------------------- pipelines

RESERVED = {"stages", "variables", "default", "image", "workflow", "include", "before_script", "after_script"}
DEFAULT_STAGES = ["build", "test", "deploy"]


def script_lines(value, where):
    """`script:` as a list of lines (a string or a nested list of strings)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        lines = []
        for item in value:
            if isinstance(item, list):
                lines.extend(script_lines(item, where))
            elif isinstance(item, (str, int, float)) and not isinstance(item, bool):
                lines.append(str(item))
            else:
                raise ValueError("%s config should be a string or a nested array of strings up to 10 levels deep"
                                 % where)
        return lines
    raise ValueError("%s config should be a string or a nested array of strings up to 10 levels deep" % where)


def variables_of(value, where):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("%s config should be a hash of key value pairs" % where)
    out = {}
    for k, v in value.items():
        if isinstance(v, dict):
            v = v.get("value", "")
        if isinstance(v, (dict, list)) or v is None:
            raise ValueError("%s config should be a hash of key value pairs" % where)
        out[str(k)] = str(v).lower() if isinstance(v, bool) else str(v)
    return out


def image_of(value, where):
    if value is None:
        return None
    if isinstance(value, dict):
        value = value.get("name")
    if not isinstance(value, str):
        raise ValueError("%s config should be a hash or a string" % where)
    return value


def parse_ci(text):
    """The jobs `.gitlab-ci.yml` defines, in stage order: [{name, stage,
    stage_idx, script, image, variables}]. ValueError with GitLab's text
    when it is not valid."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        # Psych's shape, as GitLab shows it: "(<unknown>): PROBLEM CONTEXT at line L column C".
        mark = getattr(e, "context_mark", None) or getattr(e, "problem_mark", None)
        words = " ".join(w for w in (getattr(e, "problem", None), getattr(e, "context", None)) if w) or str(e)
        where = " at line %d column %d" % (mark.line + 1, mark.column + 1) if mark else ""
        raise ValueError("(<unknown>): %s%s" % (words.replace("\n", " "), where))
    if not isinstance(doc, dict):
        raise ValueError("Invalid configuration format")
    if "include" in doc:
        raise ValueError("include config is not supported by the GitLab stand-in")
    stages = doc.get("stages", DEFAULT_STAGES)
    if not isinstance(stages, list) or not all(isinstance(s, str) for s in stages):
        raise ValueError("stages config should be an array of strings")
    order = [".pre"] + [s for s in stages if s not in (".pre", ".post")] + [".post"]
    default = doc.get("default") or {}
    if not isinstance(default, dict):
        raise ValueError("default config should be a hash")
    top_image = image_of(doc.get("image", default.get("image")), "image")
    top_before = script_lines(doc.get("before_script", default.get("before_script", [])), "before_script")
    top_vars = variables_of(doc.get("variables"), "variables")
    jobs = []
    for name, job in doc.items():
        name = str(name)
        if name in RESERVED or name.startswith("."):
            continue
        if not isinstance(job, dict):
            raise ValueError("jobs:%s config should be a hash" % name)
        if "script" not in job:
            raise ValueError("jobs:%s config should implement the script:, run:, or trigger: keyword" % name)
        script = script_lines(job["script"], "jobs:%s:script" % name)
        if "before_script" in job:
            before = script_lines(job["before_script"], "jobs:%s:before_script" % name)
        else:
            before = top_before
        stage = job.get("stage", "test")
        if not isinstance(stage, str) or stage not in order:
            raise ValueError("jobs:%s chosen stage %s does not exist; available stages are %s"
                             % (name, stage, ", ".join(order)))
        variables = dict(top_vars)
        variables.update(variables_of(job.get("variables"), "jobs:%s:variables" % name))
        jobs.append({"name": name, "stage": stage, "stage_idx": order.index(stage), "script": before + script,
                     "image": image_of(job.get("image"), "jobs:%s:image" % name) or top_image,
                     "variables": variables})
    if not jobs:
        raise ValueError("jobs config should contain at least one visible job")
    jobs.sort(key=lambda j: j["stage_idx"])
    return jobs


def create_pipeline(project, repo, ref, sha, before_sha, source="push"):
    """A pipeline for `ref` at `sha` when `.gitlab-ci.yml` is there (its id),
    else None. A file that does not parse makes a failed pipeline with the
    error in `yaml_errors`, as GitLab does."""
    text = read_blob(repo, sha, ".gitlab-ci.yml")
    if text is None:
        return None
    try:
        jobs, error = parse_ci(text.decode(errors="replace")), None
    except ValueError as e:
        jobs, error = [], str(e)
    with JOBS_LOCK, transaction() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (project["id"],))
        cur.execute("INSERT INTO ci_pipelines (project_id, iid, sha, before_sha, ref, status, source, yaml_errors) "
                    "VALUES (%s, (SELECT coalesce(max(iid), 0) + 1 FROM ci_pipelines WHERE project_id = %s), "
                    "%s, %s, %s, 'created', %s, %s) RETURNING id",
                    (project["id"], project["id"], sha, before_sha, ref, source, error))
        pipeline = cur.fetchone()[0]
        for job in jobs:
            variables = [{"key": k, "value": v, "public": True} for k, v in job["variables"].items()]
            cur.execute("INSERT INTO ci_builds (pipeline_id, project_id, name, stage, stage_idx, script, image, "
                        "variables) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                        (pipeline, project["id"], job["name"], job["stage"], job["stage_idx"],
                         json.dumps(job["script"]), job["image"], json.dumps(variables)))
        if error:
            cur.execute("UPDATE ci_pipelines SET status = 'failed', finished_at = now(), updated_at = now() "
                        "WHERE id = %s", (pipeline,))
        else:
            settle(cur, pipeline)
    print("STAND-IN: pipeline %d for %s/%s at %s: %s" % (pipeline, project["path"], ref, sha[:8],
          "yaml error: " + error if error else "%d job(s)" % len(jobs)), flush=True)
    return pipeline


def settle(cur, pipeline):
    """Brings the pipeline's status in line with its jobs' (with JOBS_LOCK):
    a failed job cancels the jobs that have not started."""
    cur.execute("SELECT status FROM ci_builds WHERE pipeline_id = %s", (pipeline,))
    statuses = [r[0] for r in cur.fetchall()]
    if "failed" in statuses:
        cur.execute("UPDATE ci_builds SET status = 'canceled', finished_at = now() "
                    "WHERE pipeline_id = %s AND status = 'pending'", (pipeline,))
        statuses = ["canceled" if s == "pending" else s for s in statuses]
    if not statuses:
        status = "failed"
    elif "running" in statuses:
        status = "running"
    elif "pending" in statuses:
        status = "running" if any(s in ("success", "failed") for s in statuses) else "pending"
    elif "failed" in statuses:
        status = "failed"
    elif all(s == "success" for s in statuses):
        status = "success"
    else:
        status = "canceled"
    finished = status in ("success", "failed", "canceled")
    cur.execute("UPDATE ci_pipelines SET status = %s, updated_at = now(), "
                "started_at = CASE WHEN %s THEN coalesce(started_at, now()) ELSE started_at END, "
                "finished_at = CASE WHEN %s THEN coalesce(finished_at, now()) ELSE NULL END WHERE id = %s",
                (status, status == "running", finished, pipeline))


PIPELINE_COLUMNS = "id, iid, project_id, sha, ref, status, source, created_at, updated_at, started_at, " \
                   "finished_at, yaml_errors, before_sha"


def pipeline_json(project, row):
    pid, iid, project_id, sha, ref, status, source, created, updated, started, finished, errors, _ = row
    duration = (finished - started).total_seconds() if started and finished else None
    return {"id": pid, "iid": iid, "project_id": project_id, "sha": sha, "ref": ref, "status": status,
            "source": source, "created_at": iso(created), "updated_at": iso(updated), "started_at": iso(started),
            "finished_at": iso(finished), "duration": duration, "yaml_errors": errors, "tag": False,
            "web_url": project["web_url"] + "/-/pipelines/%d" % pid}


JOB_COLUMNS = ("b.id, b.name, b.stage, b.status, p.ref, b.created_at, b.started_at, b.finished_at, b.failure_reason, "
               "p.id, p.project_id, p.sha, p.status, b.runner_id, r.description, b.exit_code")
JOB_FROM = "ci_builds b JOIN ci_pipelines p ON p.id = b.pipeline_id LEFT JOIN ci_runners r ON r.id = b.runner_id"


def job_json(project, row):
    (jid, name, stage, status, ref, created, started, finished, reason, pipeline, project_id, sha, pstatus,
     runner, description, _) = row
    if started and finished:
        duration = (finished - started).total_seconds()
    elif started:
        duration = (datetime.now(timezone.utc) - started).total_seconds()
    else:
        duration = None
    out = {"id": jid, "name": name, "stage": stage, "status": status, "ref": ref, "tag": False,
           "created_at": iso(created), "started_at": iso(started), "finished_at": iso(finished),
           "duration": duration, "allow_failure": False,
           "pipeline": {"id": pipeline, "project_id": project_id, "ref": ref, "sha": sha, "status": pstatus},
           "commit": {"id": sha, "short_id": sha[:8]},
           "runner": {"id": runner, "description": description} if runner else None,
           "web_url": project["web_url"] + "/-/jobs/%d" % jid}
    if status == "failed":
        out["failure_reason"] = reason or "script_failure"
    return out


def take_job(runner_id):
    """The oldest pending job whose earlier stages all succeeded, now
    running on `runner_id` with a fresh job token: (payload) or None."""
    with JOBS_LOCK, transaction() as cur:
        cur.execute("SELECT b.id, b.pipeline_id FROM ci_builds b WHERE b.status = 'pending' AND NOT EXISTS "
                    "(SELECT 1 FROM ci_builds e WHERE e.pipeline_id = b.pipeline_id AND e.stage_idx < b.stage_idx "
                    "AND e.status <> 'success') ORDER BY b.id LIMIT 1 FOR UPDATE")
        row = cur.fetchone()
        if row is None:
            return None
        jid, pipeline = row
        token = "glcbt-" + secrets.token_urlsafe(24)
        cur.execute("UPDATE ci_builds SET status = 'running', runner_id = %s, started_at = now(), "
                    "token_digest = %s WHERE id = %s", (runner_id, digest(token), jid))
        settle(cur, pipeline)
        cur.execute("SELECT b.name, b.stage, b.script, b.image, b.variables, b.timeout, p.ref, p.sha, p.before_sha, "
                    "p.id, pr.id, pr.name, pr.path, pr.namespace FROM ci_builds b "
                    "JOIN ci_pipelines p ON p.id = b.pipeline_id JOIN projects pr ON pr.id = b.project_id "
                    "WHERE b.id = %s", (jid,))
        (name, stage, script, image, variables, timeout, ref, sha, before, pipeline, project_id, project_name,
         path, namespace) = cur.fetchone()
    repo_url = GIT_BASE_URL.replace("://", "://gitlab-ci-token:%s@" % token, 1) + "/%s/%s.git" % (namespace, path)
    ci = [("CI", "true"), ("GITLAB_CI", "true"), ("CI_JOB_ID", str(jid)), ("CI_JOB_NAME", name),
          ("CI_JOB_STAGE", stage), ("CI_PROJECT_ID", str(project_id)), ("CI_PROJECT_NAME", path),
          ("CI_PROJECT_PATH", namespace + "/" + path), ("CI_COMMIT_SHA", sha), ("CI_COMMIT_REF_NAME", ref),
          ("CI_COMMIT_BEFORE_SHA", before), ("CI_PIPELINE_ID", str(pipeline))]
    print("STAND-IN: job %d (%s) of pipeline %d taken by runner %d" % (jid, name, pipeline, runner_id), flush=True)
    return {"id": jid, "token": token, "allow_git_fetch": True,
            "job_info": {"id": jid, "name": name, "stage": stage, "project_id": project_id,
                         "project_name": project_name},
            "git_info": {"repo_url": repo_url, "ref": ref, "sha": sha, "before_sha": before, "ref_type": "branch",
                         "refspecs": ["+refs/heads/%s:refs/remotes/origin/%s" % (ref, ref)], "depth": 20},
            "runner_info": {"timeout": timeout},
            "image": {"name": image} if image else None,
            "steps": [{"name": "script", "script": script, "timeout": timeout, "when": "on_success",
                       "allow_failure": False}],
            "variables": [{"key": k, "value": v, "public": True} for k, v in ci] + list(variables),
            "services": [], "artifacts": [], "cache": [], "credentials": [], "dependencies": [], "features": {}}


def running_job(jid, token):
    """(project id, pipeline id) of job `jid` when `token` is its job token
    and it is running, else None."""
    rows = query("SELECT project_id, pipeline_id, status FROM ci_builds WHERE id = %s AND token_digest = %s",
                 (jid, digest(token)))
    if not rows or rows[0][2] != "running":
        return None
    return rows[0][0], rows[0][1]


# ---------------------------------------------------------------- runners

def list_runners(status):
    rows = query(
        "SELECT id, description, active, CASE WHEN contacted_at IS NULL THEN 'never_contacted' "
        "WHEN contacted_at > now() - interval '" + ONLINE_CONTACT_TIMEOUT + "' THEN 'online' "
        "ELSE 'offline' END FROM ci_runners ORDER BY id")
    runners = [{"id": rid, "description": description, "active": active, "paused": not active,
                "is_shared": True, "runner_type": "instance_type", "name": "gitlab-runner",
                "online": state == "online", "status": state}
               for rid, description, active, state in rows]
    return [r for r in runners if status is None or r["status"] == status]


def register_runner(description):
    token = "glrt-" + secrets.token_urlsafe(20)
    rid = query("INSERT INTO ci_runners (token_digest, description, contacted_at) "
                "VALUES (%s, %s, now()) RETURNING id", (digest(token), description))[0][0]
    return {"id": rid, "token": token, "token_expires_at": None}


def runner_sql(sql, token):
    """Runs `sql` (one %s: the token's digest; RETURNING id): the id of the
    runner it touched, or None."""
    rows = query(sql, (digest(token),))
    return rows[0][0] if rows else None


# ------------------------------------------------------------------- HTTP

class Base(BaseHTTPRequestHandler):
    server_version = "stand-in"

    def log_request(self, code="-", size="-"):
        # A runner polls every second: its empty answers would drown the log.
        if not (code == 204 and self.path == "/api/v4/jobs/request"):
            super().log_request(code, size)

    def log_message(self, fmt, *args):
        sys.stdout.write("%s %s\n" % (self.__class__.__name__, fmt % args))
        sys.stdout.flush()

    def reply(self, status, body, content_type="application/json", headers=None):
        if isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Stand-In", STAND_IN)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def raw_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def json_body(self):
        raw = self.raw_body()
        if not raw:
            return {}
        if "json" in (self.headers.get("Content-Type") or ""):
            value = json.loads(raw)
            if not isinstance(value, dict):
                raise BadRequest(400, "the body is not a JSON object")
            return value
        return {k: v[0] for k, v in parse_qs(raw.decode()).items()}


GIT_ROUTE = re.compile(r"^/([^/]+)/([^/]+?)\.git/(info/refs|git-upload-pack|git-receive-pack)$")


class GitLab(Base):
    def authorized(self):
        return hmac.compare_digest(self.headers.get("PRIVATE-TOKEN") or "", TOKEN) or \
            hmac.compare_digest(self.headers.get("Authorization") or "", "Bearer " + TOKEN)

    def handle_api(self, method):
        """Runs one API request; a BadRequest, a bad body, a database or git
        error become GitLab-shaped answers."""
        try:
            return self.route(method)
        except BadRequest as e:
            return self.reply(e.status, e.body)
        except (ValueError, UnicodeDecodeError) as e:
            return self.reply(400, {"message": "400 Bad request - %s" % e})
        except psycopg2.Error as e:
            self.log_message("database: %s", str(e).strip())
            return self.reply(500, {"message": "500 Internal Server Error"})
        except GitError as e:
            self.log_message("git: %s", e)
            return self.reply(500, {"message": "500 Internal Server Error"})

    def do_GET(self):
        self.handle_api("GET")

    def do_POST(self):
        self.handle_api("POST")

    def do_PUT(self):
        self.handle_api("PUT")

    def do_PATCH(self):
        self.handle_api("PATCH")

    def do_DELETE(self):
        self.handle_api("DELETE")

    def route(self, method):
        url = urlparse(self.path)
        path, params = url.path, parse_qs(url.query)
        git_route = GIT_ROUTE.match(path)
        if git_route:
            return self.smart_http(method, git_route, url.query)
        if method == "GET" and not path.startswith("/api/"):
            return self.pages(path, params)
        if path in ("/api/v4/runners", "/api/v4/runners/verify", "/api/v4/jobs/request") \
                and method in ("POST", "DELETE"):
            return self.runner_api(method, path)
        job_api = re.match(r"^/api/v4/jobs/(\d+)(/trace)?$", path)
        if job_api and method in ("PUT", "PATCH"):
            return self.job_api(method, int(job_api.group(1)), bool(job_api.group(2)))
        if not path.startswith("/api/v4/"):
            return self.reply(404, {"message": "404 Not Found"})
        if not self.authorized():
            return self.reply(401, {"message": "401 Unauthorized"})
        query_ = {k: v[0] for k, v in params.items()}
        if method == "GET" and path == "/api/v4/version":
            return self.reply(200, {"version": "17.5.2", "revision": "stand-in", "kas": {"enabled": False},
                                    "enterprise": False})
        if method == "GET" and path in ("/api/v4/runners", "/api/v4/runners/all"):
            return self.reply(200, list_runners(query_.get("status")))
        if method == "GET" and path == "/api/v4/application/settings":
            return self.reply(200, {"signup_enabled": False, "password_authentication_enabled_for_web": False,
                                    "omniauth_enabled": True,
                                    "omniauth_providers": [{"name": "openid_connect", "label": "RAVE SSO",
                                                            "args": {"issuer": CONFIG["idp_issuer"]}}]})
        if path == "/api/v4/projects":
            if method == "GET":
                # GitLab's `search`: a case-insensitive substring of the name or path.
                like = "%" + query_.get("search", "").replace("\\", "\\\\").replace("%", "\\%") \
                    .replace("_", "\\_") + "%"
                return self.reply(200, project_sql(
                    "SELECT " + PROJECT_COLUMNS + " FROM projects WHERE name ILIKE %s OR path ILIKE %s "
                    "ORDER BY id DESC", (like, like)))
            if method == "POST":
                return self.create_project(self.json_body())
        parts = path.split("/")
        if len(parts) >= 5 and parts[3] == "projects":
            project = find_project(parts[4])
            if project is None:
                return self.reply(404, {"message": "404 Project Not Found"})
            return self.project_route(method, project, [unquote(p) for p in parts[5:]], query_)
        return self.reply(404, {"message": "404 Not Found"})

    def pages(self, path, params):
        if path == "/-/health":
            return self.reply(200, "GitLab OK", "text/plain")
        if path == "/-/readiness":
            # GitLab's shape: {"status", "<name>_check": [{"status", "message"}]},
            # 503 when one failed. The stand-in has no Redis or Gitaly, so it
            # reports only what it has: its own process and the database.
            checks = {"status": "ok"}
            if params.get("all") == ["1"]:
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
        return self.reply(404, {"message": "404 Not Found"})

    # ------------------------------------------------------------ projects

    def create_project(self, body):
        name = str(body.get("name") or body.get("path") or "")
        project_path = str(body.get("path") or name)
        if not name:
            return self.reply(400, {"message": "name is missing"})
        if not valid_path(project_path):
            return self.reply(400, {"message": {"path": [PATH_MESSAGE]}})
        rows = project_sql("INSERT INTO projects (namespace, name, path) VALUES (%s, %s, %s) "
                           "ON CONFLICT (namespace, path) DO NOTHING RETURNING " + PROJECT_COLUMNS,
                           (NAMESPACE, name, project_path))
        if not rows:
            return self.reply(400, {"message": {"name": ["has already been taken"],
                                                "path": ["has already been taken"]}})
        project = rows[0]
        try:
            with project_lock(project["id"]):
                repo = init_repository(project)
                if str(body.get("initialize_with_readme")).lower() in ("true", "1"):
                    commit_actions(repo, "main", None, "Initial commit",
                                   [{"action": "create", "file_path": "README.md", "content": "# %s\n" % name}])
        except (GitError, BadRequest, OSError):
            query("DELETE FROM projects WHERE id = %s", (project["id"],))
            shutil.rmtree(repo_dir(project), ignore_errors=True)
            raise
        return self.reply(201, project)

    def project_route(self, method, project, rest, q):
        repo = repo_dir(project)
        if not rest:
            if method == "GET":
                return self.reply(200, project)
            if method == "DELETE":
                with project_lock(project["id"]):
                    query("DELETE FROM projects WHERE id = %s", (project["id"],))
                    shutil.rmtree(repo, ignore_errors=True)
                print("STAND-IN: project %s deleted with its repository" % project["path_with_namespace"],
                      flush=True)
                # GitLab schedules the deletion and answers 202.
                return self.reply(202, {"message": "202 Accepted"})
        if not os.path.isdir(repo):
            return self.reply(404, {"message": "404 Project Not Found"})
        kind = rest[0]
        if kind == "repository":
            return self.repository(method, project, repo, rest[1:], q)
        if kind == "merge_requests":
            return self.merge_requests(method, project, repo, rest[1:], q)
        if kind == "pipelines" and method == "GET":
            return self.pipelines(project, rest[1:], q)
        if kind == "pipeline" and method == "POST" and len(rest) == 1:
            body = self.json_body()
            ref = str(body.get("ref") or q.get("ref") or "")
            sha = branch_head(repo, ref)
            if sha is None:
                return self.reply(400, {"message": {"base": ["Reference not found"]}})
            pipeline = create_pipeline(project, repo, ref, sha, ZERO_SHA, source="api")
            if pipeline is None:
                return self.reply(400, {"message": {"base": ["Missing CI config file"]}})
            return self.reply(201, self.one_pipeline(project, pipeline))
        if kind == "jobs" and method == "GET" and len(rest) in (2, 3) and rest[1].isdigit():
            rows = query("SELECT " + JOB_COLUMNS + ", b.trace FROM " + JOB_FROM +
                         " WHERE b.id = %s AND b.project_id = %s", (int(rest[1]), project["id"]))
            if not rows:
                return self.reply(404, {"message": "404 Job Not Found"})
            if len(rest) == 3 and rest[2] == "trace":
                return self.reply(200, bytes(rows[0][-1]), "text/plain; charset=utf-8")
            if len(rest) == 2:
                return self.reply(200, job_json(project, rows[0][:-1]))
        return self.reply(404, {"message": "404 Not Found"})

    def repository(self, method, project, repo, rest, q):
        if rest == ["commits"] and method == "POST":
            body = self.json_body()
            author = (str(body.get("author_name") or AUTHOR[0]), str(body.get("author_email") or AUTHOR[1]))
            with project_lock(project["id"]):
                sha, before = commit_actions(repo, str(body.get("branch") or ""),
                                             str(body.get("start_branch") or "") or None,
                                             str(body.get("commit_message") or ""), body.get("actions"), author)
                answer = commit_json(project, repo, sha)
            create_pipeline(project, repo, str(body["branch"]), sha, before)
            return self.reply(201, answer)
        if len(rest) == 2 and rest[0] == "commits" and method == "GET":
            sha = resolve(repo, rest[1])
            if sha is None:
                return self.reply(404, {"message": "404 Commit Not Found"})
            return self.reply(200, commit_json(project, repo, sha))
        if rest == ["branches"] and method == "GET":
            heads = branch_heads(repo)
            return self.reply(200, [self.branch_json(project, repo, b, s) for b, s in sorted(heads.items())])
        if len(rest) == 2 and rest[0] == "branches" and method == "GET":
            sha = branch_head(repo, rest[1])
            if sha is None:
                return self.reply(404, {"message": "404 Branch Not Found"})
            return self.reply(200, self.branch_json(project, repo, rest[1], sha))
        if len(rest) in (2, 3) and rest[0] == "files" and method == "GET":
            ref = q.get("ref") or default_branch(repo)
            sha = resolve(repo, ref)
            data = read_blob(repo, sha, rest[1]) if sha and valid_file_path(rest[1]) else None
            if data is None:
                return self.reply(404, {"message": "404 File Not Found"})
            if len(rest) == 3 and rest[2] == "raw":
                return self.reply(200, data, "text/plain; charset=utf-8")
            if len(rest) == 2:
                blob = git_out(repo, "rev-parse", sha + ":" + rest[1])
                return self.reply(200, {"file_name": rest[1].rsplit("/", 1)[-1], "file_path": rest[1],
                                        "size": len(data), "encoding": "base64", "ref": ref,
                                        "content": base64.b64encode(data).decode(), "blob_id": blob,
                                        "commit_id": sha, "last_commit_id": sha})
        if len(rest) == 2 and rest[0] == "files" and method in ("POST", "PUT", "DELETE"):
            # The single-file API: one action through the commits path.
            body = self.json_body()
            action = {"POST": "create", "PUT": "update", "DELETE": "delete"}[method]
            with project_lock(project["id"]):
                sha, before = commit_actions(repo, str(body.get("branch") or ""),
                                             str(body.get("start_branch") or "") or None,
                                             str(body.get("commit_message") or ""),
                                             [{"action": action, "file_path": rest[1],
                                               "content": body.get("content"), "encoding": body.get("encoding")}])
            create_pipeline(project, repo, str(body["branch"]), sha, before)
            if method == "DELETE":
                return self.reply(204, b"")
            return self.reply(200 if method == "PUT" else 201, {"file_path": rest[1], "branch": body["branch"]})
        return self.reply(404, {"message": "404 Not Found"})

    def branch_json(self, project, repo, branch, sha):
        c = commit_json(project, repo, sha)
        return {"name": branch, "commit": {k: c[k] for k in ("id", "short_id", "title", "message", "parent_ids",
                                                               "created_at", "author_name", "web_url")},
                "merged": False, "protected": False, "default": branch == default_branch(repo),
                "developers_can_push": True, "developers_can_merge": True, "can_push": True,
                "web_url": project["web_url"] + "/-/tree/" + quote(branch, safe="")}

    # ------------------------------------------------------ merge requests

    MR_COLUMNS = ("id, iid, project_id, title, description, state, source_branch, target_branch, sha, "
                  "merge_commit_sha, merged_at, closed_at, created_at, updated_at")

    def mr_json(self, project, repo, row):
        (mid, iid, project_id, title, description, state, source, target, sha, merge_sha, merged_at, closed_at,
         created, updated) = row
        if state == "opened":
            sha = branch_head(repo, source) or sha
        return {"id": mid, "iid": iid, "project_id": project_id, "title": title, "description": description,
                "state": state, "source_branch": source, "target_branch": target, "sha": sha,
                "merge_commit_sha": merge_sha, "merged_at": iso(merged_at), "closed_at": iso(closed_at),
                "created_at": iso(created), "updated_at": iso(updated), "draft": False,
                "source_project_id": project_id, "target_project_id": project_id,
                "merge_status": "can_be_merged" if state == "opened" else "unchecked",
                "references": {"short": "!%d" % iid, "full": "%s!%d" % (project["path_with_namespace"], iid)},
                "web_url": project["web_url"] + "/-/merge_requests/%d" % iid}

    def merge_requests(self, method, project, repo, rest, q):
        if not rest and method == "GET":
            sql, args = "SELECT " + self.MR_COLUMNS + " FROM merge_requests WHERE project_id = %s", [project["id"]]
            state = q.get("state", "all")
            if state not in ("opened", "closed", "merged", "locked", "all"):
                return self.reply(400, {"error": "state does not have a valid value"})
            if state != "all":
                sql, args = sql + " AND state = %s", args + [state]
            for key in ("source_branch", "target_branch"):
                if key in q:
                    sql, args = sql + " AND " + key + " = %s", args + [q[key]]
            rows = query(sql + " ORDER BY id DESC", args)
            return self.reply(200, [self.mr_json(project, repo, r) for r in rows])
        if not rest and method == "POST":
            body = self.json_body()
            source, target = str(body.get("source_branch") or ""), str(body.get("target_branch") or "")
            title = str(body.get("title") or "")
            for key, value in (("source_branch", source), ("target_branch", target), ("title", title)):
                if not value:
                    return self.reply(400, {"message": "%s is missing" % key})
            errors = []
            if source == target:
                errors.append("You can't use same project/branch for source and target")
            sha = branch_head(repo, source)
            if sha is None:
                errors.append("Source branch \"%s\" does not exist" % source)
            if branch_head(repo, target) is None:
                errors.append("Target branch \"%s\" does not exist" % target)
            if errors:
                return self.reply(400, {"message": errors})
            with project_lock(project["id"]), transaction() as cur:
                cur.execute("SELECT iid FROM merge_requests WHERE project_id = %s AND source_branch = %s "
                            "AND state = 'opened'", (project["id"], source))
                other = cur.fetchone()
                if other:
                    raise BadRequest(409, ["Another open merge request already exists for this source branch: !%d"
                                           % other[0]])
                cur.execute("INSERT INTO merge_requests (project_id, iid, title, description, source_branch, "
                            "target_branch, sha) VALUES (%s, (SELECT coalesce(max(iid), 0) + 1 FROM merge_requests "
                            "WHERE project_id = %s), %s, %s, %s, %s, %s) RETURNING " + self.MR_COLUMNS,
                            (project["id"], project["id"], title, str(body.get("description") or ""), source,
                             target, sha))
                row = cur.fetchone()
            return self.reply(201, self.mr_json(project, repo, row))
        if not rest or not rest[0].isdigit():
            return self.reply(404, {"message": "404 Not Found"})
        iid = int(rest[0])

        def load():
            rows = query("SELECT " + self.MR_COLUMNS + " FROM merge_requests WHERE project_id = %s AND iid = %s",
                         (project["id"], iid))
            return rows[0] if rows else None
        row = load()
        if row is None:
            return self.reply(404, {"message": "404 Not found"})
        if len(rest) == 1 and method == "GET":
            return self.reply(200, self.mr_json(project, repo, row))
        if len(rest) == 1 and method == "PUT":
            body = self.json_body()
            event = body.get("state_event")
            if event == "close" and row[5] == "opened":
                query("UPDATE merge_requests SET state = 'closed', closed_at = now(), updated_at = now() "
                      "WHERE id = %s", (row[0],))
            elif event == "reopen" and row[5] == "closed":
                query("UPDATE merge_requests SET state = 'opened', closed_at = NULL, updated_at = now() "
                      "WHERE id = %s", (row[0],))
            if body.get("title"):
                query("UPDATE merge_requests SET title = %s, updated_at = now() WHERE id = %s",
                      (str(body["title"]), row[0]))
            return self.reply(200, self.mr_json(project, repo, load()))
        if rest[1:] == ["merge"] and method == "PUT":
            return self.merge(project, repo, row, iid, self.json_body(), load)
        return self.reply(404, {"message": "404 Not Found"})

    def merge(self, project, repo, row, iid, body, load):
        with project_lock(project["id"]):
            row = load()
            mid, title, state, source, target = row[0], row[3], row[5], row[6], row[7]
            if state != "opened":
                return self.reply(405, {"message": "405 Method Not Allowed"})
            head = branch_head(repo, source)
            if body.get("sha") and head != body.get("sha"):
                return self.reply(409, {"message": "SHA does not match HEAD of source branch: %s" % head})
            before = branch_head(repo, target)
            message = "Merge branch '%s' into '%s'\n\n%s\n\nSee merge request %s!%d\n" % (
                source, target, title, project["path_with_namespace"], iid)
            sha = merge_no_ff(repo, source, target, message)
            if sha is None:
                return self.reply(406, {"message": "Branch cannot be merged"})
            query("UPDATE merge_requests SET state = 'merged', sha = %s, merge_commit_sha = %s, merged_at = now(), "
                  "updated_at = now() WHERE id = %s", (head, sha, mid))
        create_pipeline(project, repo, target, sha, before or ZERO_SHA)
        return self.reply(200, self.mr_json(project, repo, load()))

    # ----------------------------------------------------------- pipelines

    def one_pipeline(self, project, pipeline_id):
        rows = query("SELECT " + PIPELINE_COLUMNS + " FROM ci_pipelines WHERE id = %s AND project_id = %s",
                     (pipeline_id, project["id"]))
        return pipeline_json(project, rows[0]) if rows else None

    def pipelines(self, project, rest, q):
        if not rest:
            sql, args = "SELECT " + PIPELINE_COLUMNS + " FROM ci_pipelines WHERE project_id = %s", [project["id"]]
            for key in ("ref", "sha", "status", "source"):
                if key in q:
                    sql, args = sql + " AND " + key + " = %s", args + [q[key]]
            rows = query(sql + " ORDER BY id DESC", args)
            return self.reply(200, [pipeline_json(project, r) for r in rows])
        if not rest[0].isdigit():
            return self.reply(404, {"message": "404 Not found"})
        pipeline = self.one_pipeline(project, int(rest[0]))
        if pipeline is None:
            return self.reply(404, {"message": "404 Not found"})
        if len(rest) == 1:
            return self.reply(200, pipeline)
        if rest[1:] == ["jobs"]:
            rows = query("SELECT " + JOB_COLUMNS + " FROM " + JOB_FROM + " WHERE b.pipeline_id = %s ORDER BY b.id",
                         (pipeline["id"],))
            return self.reply(200, [job_json(project, r) for r in rows])
        return self.reply(404, {"message": "404 Not Found"})

    # ---------------------------------------------------------- runner API

    def runner_api(self, method, path):
        """The runner API (authenticated by runner tokens, not user tokens):
        register, verify, poll for jobs, unregister."""
        body = self.json_body()
        token = str(body.get("token") or "")
        if not token:
            return self.reply(400, {"error": "token is missing"})
        if path == "/api/v4/runners" and method == "POST":
            if not hmac.compare_digest(token, REGISTRATION_TOKEN):
                return self.reply(403, {"message": "403 Forbidden"})
            return self.reply(201, register_runner(str(body.get("description") or "")))
        if method == "DELETE":
            rid = runner_sql("DELETE FROM ci_runners WHERE token_digest = %s RETURNING id", token)
            return self.reply(204, b"") if rid is not None else self.reply(403, {"message": "403 Forbidden"})
        rid = runner_sql("UPDATE ci_runners SET contacted_at = now() WHERE token_digest = %s AND active "
                         "RETURNING id", token)
        if rid is None:
            return self.reply(403, {"message": "403 Forbidden"})
        if path.endswith("/verify"):
            return self.reply(200, {"id": rid, "token": token, "token_expires_at": None})
        payload = take_job(rid)
        if payload is None:
            return self.reply(204, b"")
        return self.reply(201, payload)

    def job_api(self, method, jid, trace):
        """A job's runner side: PUT its state, PATCH its trace (job token)."""
        if trace:
            token = self.headers.get("JOB-TOKEN") or ""
            data = self.raw_body()
        else:
            body = self.json_body()
            token = str(body.get("token") or "")
        found = running_job(jid, token) if token else None
        if found is None:
            return self.reply(403, {"message": "403 Forbidden  - Job is not running"},
                              headers={"Job-Status": "unknown"})
        _, pipeline = found
        if trace:
            match = re.match(r"^\s*(\d+)-(\d+)\s*$", self.headers.get("Content-Range") or "")
            with JOBS_LOCK, transaction() as cur:
                cur.execute("SELECT octet_length(trace) FROM ci_builds WHERE id = %s FOR UPDATE", (jid,))
                length = cur.fetchone()[0]
                if match is None or int(match.group(1)) != length:
                    return self.reply(416, b"", "text/plain", {"Range": "0-%d" % length, "Job-Status": "running"})
                cur.execute("UPDATE ci_builds SET trace = trace || %s WHERE id = %s RETURNING octet_length(trace)",
                            (psycopg2.Binary(data), jid))
                length = cur.fetchone()[0]
            return self.reply(202, b"", "text/plain", {"Range": "0-%d" % length, "Job-Status": "running"})
        state = body.get("state")
        if state == "running":
            return self.reply(200, b"", "text/plain", {"Job-Status": "running"})
        if state not in ("success", "failed"):
            return self.reply(400, {"error": "state does not have a valid value"})
        exit_code = body.get("exit_code")
        exit_code = int(exit_code) if isinstance(exit_code, (int, str)) and str(exit_code).lstrip("-").isdigit() \
            else None
        reason = str(body.get("failure_reason") or "script_failure") if state == "failed" else None
        with JOBS_LOCK, transaction() as cur:
            cur.execute("UPDATE ci_builds SET status = %s, finished_at = now(), exit_code = %s, failure_reason = %s "
                        "WHERE id = %s AND status = 'running'", (state, exit_code, reason, jid))
            settle(cur, pipeline)
        print("STAND-IN: job %d %s (exit code %s)" % (jid, state, exit_code), flush=True)
        return self.reply(200, b"", "text/plain", {"Job-Status": state})

    # ------------------------------------------------------ git smart HTTP

    def git_credentials(self, project):
        """'write', 'read' or None from the basic auth of the request."""
        header = self.headers.get("Authorization") or ""
        if not header.startswith("Basic "):
            return None, ""
        try:
            user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
        except ValueError:
            return None, ""
        if hmac.compare_digest(password, TOKEN):
            return "write", user or "oauth2"
        if user == "gitlab-ci-token" and project is not None:
            rows = query("SELECT 1 FROM ci_builds WHERE token_digest = %s AND status = 'running' AND project_id = %s",
                         (digest(password), project["id"]))
            if rows:
                return "read", user
        return None, user

    def smart_http(self, method, match, query_string):
        namespace, path, service_path = match.group(1), match.group(2), match.group(3)
        if (service_path == "info/refs") != (method == "GET") or method not in ("GET", "POST"):
            return self.reply(405, {"message": "405 Method Not Allowed"})
        service = service_path if service_path != "info/refs" else parse_qs(query_string).get("service", [""])[0]
        if service not in ("git-upload-pack", "git-receive-pack"):
            return self.reply(403, "Only smart HTTP is served\n", "text/plain")
        project = find_project(quote(namespace + "/" + path, safe="")) if valid_path(path) else None
        access, user = self.git_credentials(project)
        if access is None:
            return self.reply(401, "HTTP Basic: Access denied\n", "text/plain",
                              {"WWW-Authenticate": 'Basic realm="GitLab"'})
        if project is None or not os.path.isdir(repo_dir(project)):
            return self.reply(404, "The project you were looking for could not be found.\n", "text/plain")
        if service == "git-receive-pack" and access != "write":
            return self.reply(403, "You are not allowed to upload code.\n", "text/plain")
        if service == "git-receive-pack" and method == "POST":
            with project_lock(project["id"]):
                before = branch_heads(repo_dir(project))
                ok = self.run_http_backend(project, user, "/%s/%s.git/%s" % (namespace, path, service_path),
                                           query_string)
                after = branch_heads(repo_dir(project))
            if ok:
                for branch, sha in sorted(after.items()):
                    if before.get(branch) != sha:
                        create_pipeline(project, repo_dir(project), branch, sha, before.get(branch, ZERO_SHA))
            return
        self.run_http_backend(project, user, "/%s/%s.git/%s" % (namespace, path, service_path), query_string)

    def request_body_chunks(self):
        """The request body, streamed: Content-Length bytes or the chunked encoding."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            while True:
                size_line = self.rfile.readline(1024)
                if not size_line:
                    return
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return
                left = size
                while left:
                    chunk = self.rfile.read(min(left, 65536))
                    if not chunk:
                        return
                    left -= len(chunk)
                    yield chunk
                self.rfile.readline(1024)
            return
        left = int(self.headers.get("Content-Length") or 0)
        while left > 0:
            chunk = self.rfile.read(min(left, 65536))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk

    def run_http_backend(self, project, user, path_info, query_string):
        """`git http-backend` as a CGI for this request, within CGI_TIMEOUT;
        True when it answered 200."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_PROJECT_ROOT": GIT_ROOT,
               "GIT_HTTP_EXPORT_ALL": "1", "GIT_CONFIG_NOSYSTEM": "1", "REMOTE_USER": user,
               "REMOTE_ADDR": self.client_address[0], "PATH_INFO": path_info, "QUERY_STRING": query_string or "",
               "REQUEST_METHOD": self.command, "CONTENT_TYPE": self.headers.get("Content-Type") or "",
               "SERVER_PROTOCOL": "HTTP/1.0", "GATEWAY_INTERFACE": "CGI/1.1"}
        if self.headers.get("Content-Length") and "chunked" not in (self.headers.get("Transfer-Encoding") or ""):
            env["CONTENT_LENGTH"] = self.headers["Content-Length"]
        for header in ("Content-Encoding", "Git-Protocol"):
            if self.headers.get(header):
                env["HTTP_" + header.upper().replace("-", "_")] = self.headers[header]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        proc = subprocess.Popen(["git", "http-backend"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True, preexec_fn=die_with_parent)
        timer = threading.Timer(CGI_TIMEOUT, lambda: os.killpg(proc.pid, signal.SIGKILL))
        timer.start()
        errors = []

        def feed():
            try:
                if self.command == "POST":
                    for chunk in self.request_body_chunks():
                        proc.stdin.write(chunk)
            except (OSError, ValueError):
                pass
            finally:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        drain = threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True)
        drain.start()
        try:
            head = b""
            while b"\r\n\r\n" not in head and b"\n\n" not in head:
                more = proc.stdout.read1(65536)
                if not more:
                    break
                head += more
            sep = b"\r\n\r\n" if b"\r\n\r\n" in head else b"\n\n"
            header_text, _, rest = head.partition(sep)
            status, headers = 200, []
            for line in header_text.decode(errors="replace").splitlines():
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.strip().split()[0] or 200)
                elif name:
                    headers.append((name.strip(), value.strip()))
            if not header_text:
                status = 502
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("X-Stand-In", STAND_IN)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(rest)
            while True:
                more = proc.stdout.read1(65536)
                if not more:
                    break
                self.wfile.write(more)
            self.wfile.flush()
            proc.wait(timeout=CGI_TIMEOUT)
            feeder.join(5)
            drain.join(5)
        except (OSError, subprocess.TimeoutExpired) as e:
            self.log_message("git http-backend: %s", e)
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return False
        finally:
            timer.cancel()
        self.close_connection = True
        text = b"".join(e for e in errors if e).decode(errors="replace").strip()
        if text:
            self.log_message("git http-backend: %s", text[:500])
        return status == 200 and proc.returncode == 0


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
    os.makedirs(os.path.join(GIT_ROOT, NAMESPACE), exist_ok=True)
    serve(CONFIG["gitlab_port"], GitLab)
    serve(CONFIG["grafana_port"], Grafana)
    print("STAND-IN: API shapes of GitLab (port %d; repositories in %s, git smart HTTP through git http-backend) "
          "and Grafana (port %d), answered from the demo's PostgreSQL and git; not the real services"
          % (CONFIG["gitlab_port"], GIT_ROOT, CONFIG["grafana_port"]), flush=True)
    threading.Event().wait()
