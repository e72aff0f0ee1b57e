"""rave-runner: the demo's STAND-IN for gitlab-runner (it is not gitlab-runner
and says so in its log and in every job's trace).

gitlab-runner cannot be installed on the machines the demo runs on, so this
small loop speaks its side of GitLab's runner API to the GitLab stand-in:
POST /api/v4/jobs/request with the runner token `demo up` registered; for a
job, fetch the commit over git smart HTTP (the job token as basic auth, in
git's environment, never in argv), run the script in a container of the
demo's podman (`--network none`, the checkout mounted at
/builds/<project>), stream its output into the job's trace (PATCH
/api/v4/jobs/:id/trace every second and at the end), then PUT the job's
state and exit code and remove the checkout. One job at a time.

Every HTTP call and subprocess has a deadline; an error is logged and the
loop goes on with backoff. Children die with it (PR_SET_PDEATHSIG), and
SIGTERM stops the running job's processes first.

    python runner.py CONFIG.json

CONFIG.json: {"gitlab_url", "token_file", "podman": [argv prefix: program and
              global flags], "podman_env": {name: value}, "image",
              "builds_dir", "poll_interval"}
"""
import base64
import ctypes
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit, urlunsplit

CONFIG = json.load(open(sys.argv[1]))
GITLAB_URL = CONFIG["gitlab_url"].rstrip("/")
POLL_INTERVAL = float(CONFIG.get("poll_interval", 1))
HTTP_TIMEOUT = 10
FETCH_TIMEOUT = 120
PODMAN_CLEANUP_TIMEOUT = 30
MAX_BACKOFF = 30
VERSION = "0.1.0-stand-in"
# The child process group of the job step running now (for SIGTERM).
CURRENT = {"pgid": None}


def log(message):
    print("rave-runner: " + message, flush=True)


def die_with_parent():
    """preexec_fn: the child gets SIGKILL when this process dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def api(method, path, body=None, headers=None, data=None):
    """One call of the GitLab API within HTTP_TIMEOUT: (status, headers,
    body bytes). Network errors raise OSError."""
    if body is not None:
        data = json.dumps(body).encode()
        headers = dict(headers or {}, **{"Content-Type": "application/json"})
    request = urllib.request.Request(GITLAB_URL + path, data=data, method=method, headers=headers or {})
    request.add_header("User-Agent", "rave-runner " + VERSION)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def run_child(argv, env, timeout, output):
    """Runs argv in a session of its own, its stdout and stderr to
    `output(bytes)`; the exit code, or None when it ran past `timeout` (then
    its process group is killed)."""
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent)
    CURRENT["pgid"] = proc.pid

    def pump():
        while True:
            chunk = proc.stdout.read1(65536)
            if not chunk:
                return
            output(chunk)
    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        proc.wait()
        code = None
    finally:
        CURRENT["pgid"] = None
    reader.join(5)
    return code


def kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass


def on_sigterm(signum, frame):
    if CURRENT["pgid"]:
        kill_group(CURRENT["pgid"])
    log("stopping (signal %d)" % signum)
    sys.exit(0)


class Trace:
    """A job's log, sent to GitLab as it grows: PATCH every second and at the end."""

    def __init__(self, job_id, token):
        self.job_id, self.token = job_id, token
        self.data, self.sent = bytearray(), 0
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def write(self, data):
        if isinstance(data, str):
            data = data.encode()
        with self.lock:
            self.data.extend(data)

    def loop(self):
        while not self.done.wait(1):
            self.flush()

    def flush(self):
        """Sends what GitLab does not have yet; True when it has it all."""
        with self.lock:
            start, chunk = self.sent, bytes(self.data[self.sent:])
        if not chunk:
            return True
        try:
            status, headers, _ = api("PATCH", "/api/v4/jobs/%d/trace" % self.job_id, data=chunk,
                                     headers={"JOB-TOKEN": self.token, "Content-Type": "text/plain",
                                              "Content-Range": "%d-%d" % (start, start + len(chunk) - 1)})
        except OSError as e:
            log("job %d: sending the trace: %s" % (self.job_id, e))
            return False
        got = re.match(r"^0-(\d+)$", (headers or {}).get("Range", "") or "")
        if status in (202, 416) and got and int(got.group(1)) <= len(self.data):
            # GitLab says how much it has (after a 416 too): go on from there.
            with self.lock:
                self.sent = int(got.group(1))
            return status == 202 and self.sent == start + len(chunk)
        log("job %d: sending the trace: status %d" % (self.job_id, status))
        return False

    def close(self):
        self.done.set()
        self.thread.join(HTTP_TIMEOUT + 2)
        for _ in range(3):
            if self.flush():
                return
            time.sleep(1)


def finish(job_id, token, state, exit_code, reason=None):
    body = {"token": token, "state": state, "exit_code": exit_code}
    if reason:
        body["failure_reason"] = reason
    for attempt in range(5):
        try:
            status, _, text = api("PUT", "/api/v4/jobs/%d" % job_id, body)
            if status == 200:
                log("job %d: %s (exit code %s)" % (job_id, state, exit_code))
                return
            log("job %d: PUT state answered %d %s" % (job_id, status, text[:200].decode(errors="replace")))
            if 400 <= status < 500:
                return
        except OSError as e:
            log("job %d: PUT state: %s" % (job_id, e))
        time.sleep(min(2 ** attempt, MAX_BACKOFF))


def git_env(repo_url):
    """(url without credentials, environment passing them as an
    Authorization header to git through GIT_CONFIG_*)."""
    parts = urlsplit(repo_url)
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1")
    if parts.username is not None:
        basic = base64.b64encode(("%s:%s" % (parts.username, parts.password or "")).encode()).decode()
        env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="http.extraHeader",
                   GIT_CONFIG_VALUE_0="Authorization: Basic " + basic)
    netloc = parts.hostname + (":%d" % parts.port if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), env


def fetch(job, checkout, trace):
    """The job's commit checked out in `checkout`; an error text or None."""
    git_info = job["git_info"]
    url, env = git_env(git_info["repo_url"])
    ref, sha = git_info["ref"], git_info["sha"]
    depth = str(int(git_info.get("depth") or 0))
    trace.write("Fetching %s (%s at %s) into %s\n" % (url, ref, sha[:8], checkout))
    steps = [["git", "init", "-q", checkout],
             ["git", "-C", checkout, "fetch", "--no-tags"] + (["--depth", depth] if depth != "0" else [])
             + [url, "+refs/heads/%s:refs/remotes/origin/%s" % (ref, ref)]]
    for argv in steps:
        code = run_child(argv, env, FETCH_TIMEOUT, trace.write)
        if code != 0:
            return "`%s` %s" % (" ".join(argv[:4]), "timed out" if code is None else "exited %d" % code)
    if run_child(["git", "-C", checkout, "cat-file", "-e", sha + "^{commit}"], env, FETCH_TIMEOUT,
                 lambda _: None) != 0:
        # The branch moved on past the depth: fetch the commit itself.
        code = run_child(["git", "-C", checkout, "fetch", "--no-tags", url, sha], env, FETCH_TIMEOUT, trace.write)
        if code != 0:
            return "fetching %s %s" % (sha[:8], "timed out" if code is None else "exited %d" % code)
    code = run_child(["git", "-c", "advice.detachedHead=false", "-C", checkout, "checkout", "-q", "-f", sha],
                     env, FETCH_TIMEOUT, trace.write)
    if code != 0:
        return "checking out %s %s" % (sha[:8], "timed out" if code is None else "exited %d" % code)
    trace.write("Checked out %s\n" % sha[:8])
    return None


def shell_script(lines):
    """One `sh -c` script: stop at the first failing line, echo each line first."""
    out = ["set -e"]
    for line in lines:
        out.append("echo %s" % shlex.quote("$ " + line))
        out.append(line)
    return "\n".join(out) + "\n"


def run_job(job):
    job_id, token = int(job["id"]), job["token"]
    name = job.get("job_info", {}).get("name", "")
    variables = {v["key"]: str(v["value"]) for v in job.get("variables", [])
                 if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", str(v.get("key", "")))}
    project = re.sub(r"[^A-Za-z0-9_.-]", "_", variables.get("CI_PROJECT_NAME") or "project")
    step = (job.get("steps") or [{}])[0]
    timeout = int(step.get("timeout") or 3600)
    log("job %d (%s): taken" % (job_id, name))
    trace = Trace(job_id, token)
    trace.write("Running with rave-runner %s: the demo's stand-in for gitlab-runner, not gitlab-runner\n" % VERSION)
    wanted = (job.get("image") or {}).get("name")
    image = CONFIG["image"]
    if wanted and wanted != image:
        note = "the job asks for image %s; the demo has only %s: using that instead" % (wanted, image)
        log("job %d: %s" % (job_id, note))
        trace.write("WARNING: " + note + "\n")
    trace.write("Using podman with image %s\n" % image)
    checkout = os.path.join(CONFIG["builds_dir"], str(job_id))
    shutil.rmtree(checkout, ignore_errors=True)
    state, exit_code, reason = "failed", None, "runner_system_failure"
    try:
        error = fetch(job, checkout, trace)
        if error:
            trace.write("ERROR: Job failed: %s\n" % error)
        else:
            container = "rave-runner-job-%d" % job_id
            argv = list(CONFIG["podman"]) + ["run", "--rm", "--network", "none", "--name", container,
                                             "-v", "%s:/builds/%s:rw" % (checkout, project),
                                             "-w", "/builds/%s" % project]
            for key in variables:
                # The value travels in podman's environment, not in argv.
                argv += ["-e", key]
            argv += [image, "sh", "-c", shell_script(step.get("script") or [])]
            env = dict(os.environ, **CONFIG.get("podman_env", {}))
            env.update(variables)
            code = run_child(argv, env, timeout, trace.write)
            if code is None:
                run_child(list(CONFIG["podman"]) + ["rm", "--force", "--time", "0", container], env,
                          PODMAN_CLEANUP_TIMEOUT, lambda _: None)
                trace.write("ERROR: Job failed: execution took longer than %d seconds\n" % timeout)
                reason = "job_execution_timeout"
            elif code == 0:
                state, exit_code, reason = "success", 0, None
                trace.write("Job succeeded\n")
            else:
                exit_code = code
                # podman's own errors are 125 (engine), 126 and 127 (the command).
                reason = "runner_system_failure" if code == 125 else "script_failure"
                trace.write("ERROR: Job failed: exit code %d\n" % code)
    except (OSError, ValueError, KeyError) as e:
        trace.write("ERROR: Job failed (system failure): %s\n" % e)
        log("job %d: %s" % (job_id, e))
    finally:
        trace.close()
        shutil.rmtree(checkout, ignore_errors=True)
    finish(job_id, token, state, exit_code, reason)


def main():
    signal.signal(signal.SIGTERM, on_sigterm)
    os.makedirs(CONFIG["builds_dir"], exist_ok=True)
    log("rave-runner %s, the demo's STAND-IN for gitlab-runner (not gitlab-runner): polling %s for jobs, "
        "running them with podman in %s" % (VERSION, GITLAB_URL, CONFIG["image"]))
    backoff, polling = 0, False
    info = {"name": "rave-runner", "version": VERSION, "executor": "podman", "shell": "sh",
            "features": {"trace_reset": False, "trace_checksum": False, "refspecs": True}}
    while True:
        try:
            token = open(CONFIG["token_file"]).read().strip()
            status, _, body = api("POST", "/api/v4/jobs/request", {"token": token, "info": info})
        except OSError as e:
            status, body = None, str(e).encode()
        if status == 201:
            backoff = 0
            try:
                job = json.loads(body)
            except ValueError as e:
                log("jobs/request: the job payload is not JSON: %s" % e)
                continue
            run_job(job)
            continue
        if status == 204:
            if not polling:
                log("polling: connected, no job pending")
                polling = True
            backoff = 0
            time.sleep(POLL_INTERVAL)
            continue
        backoff = min(max(backoff * 2, 1), MAX_BACKOFF)
        log("jobs/request: %s; again in %ds" % ("status %d %s" % (status, body[:200].decode(errors="replace"))
                                                 if status else body.decode(errors="replace"), backoff))
        time.sleep(backoff)


if __name__ == "__main__":
    main()
