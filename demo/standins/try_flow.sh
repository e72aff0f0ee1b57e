#!/usr/bin/env bash
# Drives the hello-world flow against a running demo stack's GitLab stand-in
# and rave-runner: a project with a README, a commit with .gitlab-ci.yml on
# a branch, its pipeline from pending to success, the job and its trace, a
# clone and a push over git smart HTTP (through nginx), a merge request and
# its merge commit, a failing job, a bad .gitlab-ci.yml, a stopped runner
# leaving the job pending, and the project's deletion.
#
#   demo/standins/try_flow.sh STATE     (STATE: the --state of `demo up`)
#
# Exits non-zero at the first unexpected answer and says which. Needs bash,
# curl, jq and git. The token goes to curl in a header file and to git in
# its environment, never in argv.
set -euo pipefail

STATE=${1:?usage: try_flow.sh STATE (the --state directory of spinup-smoke demo up)}
TARGET="$STATE/target.toml"
[ -f "$TARGET" ] || { echo "FAIL: $TARGET is missing: is the demo up?" >&2; exit 2; }
var() { sed -n "s/^$1 = \"\\(.*\\)\"$/\\1/p" "$TARGET"; }
API="$(var gitlab.url)/api/v4"
GIT_URL=$(var gitlab.git_url)
[ -n "$GIT_URL" ] || { echo "FAIL: gitlab.git_url is not in $TARGET" >&2; exit 2; }
TOKEN=$(cat "$STATE/secrets/gitlab_token")
RUNNER_PID=$(cut -d' ' -f1 "$STATE/run/runner.pid")
WORK=$(mktemp -d)
trap 'kill -CONT "$RUNNER_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
printf 'PRIVATE-TOKEN: %s\n' "$TOKEN" > "$WORK/auth-header"
chmod 600 "$WORK/auth-header"
NAME="hello-world-$(date +%s)-$$"
ENC="rave%2F$NAME"

fail() { echo "FAIL: $*" >&2; [ -s "$WORK/body" ] && { echo "  last body: $(head -c 600 "$WORK/body")" >&2; }; exit 1; }
ok() { echo "ok: $*"; }

# api METHOD PATH [JSON]: the status in $STATUS, the body in $WORK/body.
api() {
  local data=()
  [ $# -ge 3 ] && data=(-H 'Content-Type: application/json' --data-binary "$3")
  STATUS=$(curl -sS --max-time 20 -o "$WORK/body" -w '%{http_code}' -X "$1" -H @"$WORK/auth-header" \
    "${data[@]}" "$API$2") || fail "$1 $2: curl failed"
}
expect() { [ "$STATUS" = "$1" ] || fail "$2: status $STATUS, expected $1"; }
field() { jq -r "$1" "$WORK/body"; }

# git with the token as basic auth in its environment.
git_auth() {
  GIT_TERMINAL_PROMPT=0 GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=http.extraHeader \
    GIT_CONFIG_VALUE_0="Authorization: Basic $(printf 'oauth2:%s' "$TOKEN" | base64 -w0)" \
    timeout 60 git "$@"
}

# commit BRANCH START MESSAGE ACTIONS_JSON: the new sha in $SHA.
commit() {
  api POST "/projects/$ENC/repository/commits" "$(jq -n --arg b "$1" --arg s "$2" --arg m "$3" \
    --argjson a "$4" '{branch: $b, start_branch: $s, commit_message: $m, actions: $a}')"
  expect 201 "commit on $1"
  SHA=$(field .id)
  [[ "$SHA" =~ ^[0-9a-f]{40}$ ]] || fail "commit on $1: id '$SHA' is not 40 hex"
}

# pipeline_of REF SHA: the pipeline's id in $PIPELINE (waits up to 10 s for it).
pipeline_of() {
  for _ in $(seq 50); do
    api GET "/projects/$ENC/pipelines?ref=$1&sha=$2"
    expect 200 "pipelines of $1"
    PIPELINE=$(field '.[0].id // empty')
    [ -n "$PIPELINE" ] && return 0
    sleep 0.2
  done
  fail "no pipeline for $1 at $2"
}

# wait_pipeline ID WANTED: polls until it is finished; the statuses seen in $SEEN.
wait_pipeline() {
  SEEN=""
  local status=""
  for _ in $(seq 600); do
    api GET "/projects/$ENC/pipelines/$1"
    expect 200 "pipeline $1"
    status=$(field .status)
    [[ " $SEEN " == *" $status "* ]] || SEEN="$SEEN $status"
    case "$status" in success|failed|canceled) break ;; esac
    sleep 0.2
  done
  [ "$status" = "$2" ] || fail "pipeline $1 ended '$status' (seen:$SEEN), expected $2"
}

echo "== flow against $API (git: $GIT_URL), project rave/$NAME"

api POST /projects "$(jq -n --arg n "$NAME" '{name: $n, path: $n, initialize_with_readme: true}')"
expect 201 "create project"
PID=$(field .id)
REPO="$STATE/standins/git/rave/$NAME.git"
[ -d "$REPO" ] || fail "the project's repository $REPO does not exist"
ok "project $PID created with repository $REPO"

api GET "/projects/$PID/repository/files/README.md/raw?ref=main"
expect 200 "README.md on main"
[ "$(cat "$WORK/body")" = "# $NAME" ] || fail "README.md is not '# $NAME'"
api GET "/projects/$ENC/repository/branches/main"
expect 200 "branch main"
[ "$(field .default)" = true ] || fail "main is not the default branch"
api GET "/projects/$ENC/repository/branches/nope"
expect 404 "a missing branch"
ok "README.md on main, branch API"

CI='hello:\n  script:\n    - grep '"'"'Hello'"'"' README.md\n    - echo hello-world ok\n'
commit hello-world main "Say hello" "$(jq -n --arg ci "$(printf "$CI")" --arg r "# $NAME
Hello from the flow
" '[{action: "update", file_path: "README.md", content: $r}, {action: "create", file_path: ".gitlab-ci.yml", content: $ci}]')"
HELLO_SHA=$SHA
api POST "/projects/$ENC/repository/commits" '{"branch": "hello-world", "commit_message": "again", "actions": [{"action": "create", "file_path": "README.md", "content": "x"}]}'
expect 400 "creating an existing file"
ok "commit $HELLO_SHA on hello-world (README.md + .gitlab-ci.yml); creating an existing file is refused"

pipeline_of hello-world "$HELLO_SHA"
wait_pipeline "$PIPELINE" success
ok "pipeline $PIPELINE:$SEEN"
api GET "/projects/$ENC/pipelines/$PIPELINE/jobs"
expect 200 "jobs of pipeline $PIPELINE"
[ "$(field 'length')" = 1 ] && [ "$(field '.[0].name')" = hello ] && [ "$(field '.[0].status')" = success ] \
  || fail "pipeline $PIPELINE's jobs are not [hello: success]"
JOB=$(field '.[0].id')
[ "$(field '.[0].runner.id')" != null ] || fail "job $JOB names no runner"
RUNNER_NAME=$(field '.[0].runner.description')
api GET "/projects/$ENC/jobs/$JOB/trace"
expect 200 "trace of job $JOB"
grep -q 'hello-world ok' "$WORK/body" || fail "the trace of job $JOB lacks 'hello-world ok'"
grep -q "\$ grep 'Hello' README.md" "$WORK/body" || fail "the trace of job $JOB lacks the script line"
grep -q 'rave-runner' "$WORK/body" || fail "the trace of job $JOB does not say rave-runner ran it"
grep -q 'glcbt-' "$WORK/body" && fail "the trace of job $JOB shows a job token"
ok "job $JOB (hello) succeeded on runner '$RUNNER_NAME'; trace has the output"

# Git smart HTTP through nginx.
STATUS=$(curl -sS --max-time 20 -o /dev/null -w '%{http_code}' "$GIT_URL/rave/$NAME.git/info/refs?service=git-upload-pack")
[ "$STATUS" = 401 ] || fail "an anonymous info/refs answered $STATUS, expected 401"
curl -sS --max-time 20 -D "$WORK/headers" -o /dev/null -H "Authorization: Basic $(printf 'oauth2:%s' "$TOKEN" | base64 -w0)" \
  "$GIT_URL/rave/$NAME.git/info/refs?service=git-upload-pack" --config /dev/null 2>/dev/null || true
grep -qi '^x-stand-in:' "$WORK/headers" || fail "git smart HTTP answers carry no X-Stand-In header"
git_auth clone -q -b hello-world "$GIT_URL/rave/$NAME.git" "$WORK/clone" || fail "git clone over $GIT_URL"
[ "$(git -C "$WORK/clone" rev-parse HEAD)" = "$HELLO_SHA" ] || fail "the clone's hello-world is not $HELLO_SHA"
ok "anonymous clone refused (401); clone with the token has $HELLO_SHA"

echo "Pushed over smart HTTP" >> "$WORK/clone/README.md"
git -C "$WORK/clone" -c user.name=Flow -c user.email=flow@rave.local commit -qam "Push over HTTP"
git_auth -C "$WORK/clone" push -q origin hello-world || fail "git push over $GIT_URL"
PUSH_SHA=$(git -C "$WORK/clone" rev-parse HEAD)
api GET "/projects/$ENC/repository/branches/hello-world"
[ "$(field .commit.id)" = "$PUSH_SHA" ] || fail "hello-world is not at the pushed $PUSH_SHA"
pipeline_of hello-world "$PUSH_SHA"
wait_pipeline "$PIPELINE" success
ok "push $PUSH_SHA made pipeline $PIPELINE:$SEEN"

api POST "/projects/$ENC/merge_requests" '{"source_branch": "hello-world", "target_branch": "main", "title": "Hello world"}'
expect 201 "open a merge request"
IID=$(field .iid)
[ "$(field .state)" = opened ] && [ "$(field .sha)" = "$PUSH_SHA" ] || fail "MR !$IID is not opened at $PUSH_SHA"
api POST "/projects/$ENC/merge_requests" '{"source_branch": "hello-world", "target_branch": "main", "title": "Again"}'
expect 409 "a second open merge request"
api GET "/projects/$ENC/merge_requests?state=opened&source_branch=hello-world"
[ "$(field '.[0].iid')" = "$IID" ] || fail "the opened MR list lacks !$IID"
api PUT "/projects/$ENC/merge_requests/$IID/merge"
expect 200 "merge !$IID"
MERGE_SHA=$(field .merge_commit_sha)
[ "$(field .state)" = merged ] && [[ "$MERGE_SHA" =~ ^[0-9a-f]{40}$ ]] || fail "!$IID is not merged with a merge commit"
api GET "/projects/$ENC/repository/commits/$MERGE_SHA"
expect 200 "the merge commit"
[ "$(field '.parent_ids | length')" = 2 ] && [ "$(field '.parent_ids[1]')" = "$PUSH_SHA" ] \
  || fail "the merge commit's parents are not [main, $PUSH_SHA]"
api GET "/projects/$ENC/repository/branches/main"
[ "$(field .commit.id)" = "$MERGE_SHA" ] || fail "main is not at the merge commit"
api PUT "/projects/$ENC/merge_requests/$IID/merge"
expect 405 "merging a merged MR"
pipeline_of main "$MERGE_SHA"
wait_pipeline "$PIPELINE" success
ok "MR !$IID merged: main at merge commit $MERGE_SHA (2 parents); 409 and 405 as GitLab; pipeline $PIPELINE:$SEEN"

# A failing job fails the pipeline and cancels the later stage.
CI='stages: [build, test]\nboom:\n  stage: build\n  script:\n    - echo about to fail\n    - exit 3\nafter:\n  stage: test\n  script: echo never\n'
commit fail main "Fail" "$(jq -n --arg ci "$(printf "$CI")" '[{action: "update", file_path: ".gitlab-ci.yml", content: $ci}]')"
pipeline_of fail "$SHA"
wait_pipeline "$PIPELINE" failed
api GET "/projects/$ENC/pipelines/$PIPELINE/jobs"
[ "$(field '[.[] | .name + ":" + .status] | join(",")')" = "boom:failed,after:canceled" ] \
  || fail "pipeline $PIPELINE's jobs are not boom:failed,after:canceled"
[ "$(field '.[0].failure_reason')" = script_failure ] || fail "boom's failure_reason is not script_failure"
api GET "/projects/$ENC/jobs/$(jq -r '.[0].id' <<<"$(cat "$WORK/body")")/trace"
grep -q 'about to fail' "$WORK/body" && grep -q 'exit code 3' "$WORK/body" || fail "boom's trace lacks its output and exit code"
ok "exit 3: pipeline $PIPELINE failed (boom failed: script_failure, after canceled), trace has the log"

# A bad .gitlab-ci.yml: a failed pipeline with yaml_errors and no jobs.
commit badyaml main "Bad yaml" '[{"action": "update", "file_path": ".gitlab-ci.yml", "content": "hello: [unclosed\n"}]'
pipeline_of badyaml "$SHA"
api GET "/projects/$ENC/pipelines/$PIPELINE"
[ "$(field .status)" = failed ] && [ "$(field '.yaml_errors // empty')" != "" ] || fail "a bad .gitlab-ci.yml did not fail pipeline $PIPELINE with yaml_errors"
api GET "/projects/$ENC/pipelines/$PIPELINE/jobs"
[ "$(field length)" = 0 ] || fail "the bad-yaml pipeline has jobs"
ok "bad yaml: pipeline $PIPELINE failed, yaml_errors: $(jq -r .yaml_errors <<<"$(curl -sS --max-time 20 -H @"$WORK/auth-header" "$API/projects/$ENC/pipelines/$PIPELINE")")"

# A job asking for another image runs in the demo image, and its trace says so.
CI='img:\n  image: alpine:3.20\n  script:\n    - echo "running in $(head -1 /etc/passwd)"\n    - echo "CI_COMMIT_REF_NAME=$CI_COMMIT_REF_NAME"\n'
commit image main "Another image" "$(jq -n --arg ci "$(printf "$CI")" '[{action: "update", file_path: ".gitlab-ci.yml", content: $ci}]')"
pipeline_of image "$SHA"
wait_pipeline "$PIPELINE" success
api GET "/projects/$ENC/pipelines/$PIPELINE/jobs"
api GET "/projects/$ENC/jobs/$(field '.[0].id')/trace"
grep -q 'alpine:3.20' "$WORK/body" && grep -q 'using that instead' "$WORK/body" \
  || fail "the trace does not say the demo image stood in for alpine:3.20"
grep -q 'CI_COMMIT_REF_NAME=image' "$WORK/body" || fail "the job did not get CI_COMMIT_REF_NAME"
ok "image alpine:3.20: ran in the demo image, the trace says so; CI variables set"

# A stopped runner leaves the job pending; it runs once the runner goes on.
kill -STOP "$RUNNER_PID"
commit stopped main "While the runner is stopped" '[{"action": "create", "file_path": "note.txt", "content": "Hello\n"}]'
pipeline_of stopped "$SHA"
sleep 5
api GET "/projects/$ENC/pipelines/$PIPELINE/jobs"
[ "$(field '.[0].status')" = pending ] || fail "with the runner stopped, the job is $(field '.[0].status'), not pending"
api GET "/projects/$ENC/pipelines/$PIPELINE"
[ "$(field .status)" = pending ] || fail "with the runner stopped, pipeline $PIPELINE is $(field .status), not pending"
kill -CONT "$RUNNER_PID"
wait_pipeline "$PIPELINE" success
ok "stopped runner: pipeline $PIPELINE stayed pending 5 s, then:$SEEN"

api DELETE "/projects/$ENC"
expect 202 "delete the project"
[ ! -e "$REPO" ] || fail "the repository $REPO is still there after DELETE"
api GET "/projects/$PID"
expect 404 "the deleted project"
ok "project deleted, repository gone"
echo "== the flow passed"
