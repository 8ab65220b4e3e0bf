#!/usr/bin/env bash
# A scripted curl session against the local server, as a newcomer would try it:
# login with a simulator code -> GET /session -> simulated phone payload -> POST /phone
# -> phone by code -> GET /session?verify=wechat -> GET /me (the authorizer's decision)
# -> GET /account (the bound phone) -> a second login (same user, the first session
# revoked) -> DELETE /account -> a new account -> POST /refresh -> the JWKS and a JWT
# checked by examples/jwks-node -> logout ends the refresh token, then the OpenAPI conformance check (tests/openapi_conformance.py) on the same server,
# and the H5 example (examples/h5) signing in through WeChat's OAuth redirect in Chromium (tests/browser/h5_login.py).
# Usage: bash infra/local-smoke.sh   (builds and starts the server on a free port, stops it after)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=infra/lib.sh
source "$root/infra/lib.sh"
target=$(cargo_target_dir)
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }

cargo build --locked -p wxauth-local
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log="$target/local-smoke.log"
PORT=$port "$target/debug/wxauth-local" >"$log" 2>&1 &
server=$!
# A second server for docs/local.md's SINGLE_SESSION=false walkthrough block.
port2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
SINGLE_SESSION=false PORT=$port2 "$target/debug/wxauth-local" >"$log.multi-session" 2>&1 &
server2=$!
trap 'kill $server $server2 2>/dev/null || true; wait $server $server2 2>/dev/null || true' EXIT
for p in $port $port2; do
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break
    sleep 0.1
  done
done
base="http://127.0.0.1:$port"

# docs/local.md's walkthrough (and its `cargo run -p wxauth-local`, built
# and started above), as written, every answer checked.
python3 infra/docs-walkthrough.py docs/local.md "$base" "http://127.0.0.1:$port2"

# field NAME < json: prints one top-level field, fails if absent.
field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
expect() { # expect WANT_STATUS METHOD PATH [curl args...]
  local want=$1 method=$2 path=$3; shift 3
  local out status
  out=$(curl -sS -o /dev/stdout -w '\n%{http_code}' -X "$method" "$base$path" "$@")
  status=${out##*$'\n'}
  body=${out%$'\n'*}
  if [ "$status" != "$want" ]; then
    echo "FAIL: $method $path answered $status, wanted $want: $body" >&2
    exit 1
  fi
  echo "ok: $method $path -> $status"
  passed=$((passed + 1))
}
passed=0

grep -q "WECHAT SIMULATOR ON" "$log" || { echo "FAIL: no simulator banner" >&2; cat "$log" >&2; exit 1; }
expect 200 POST /login -H 'content-type: application/json' -d '{"code":"newcomer-1"}'
token=$(field token <<<"$body")
openid=$(field openid <<<"$body")
user_id=$(field userId <<<"$body")
[ "$(field newUser <<<"$body")" = "True" ] || { echo "FAIL: the first login is not a new user: $body" >&2; exit 1; }
expect 200 GET /session -H "Authorization: Bearer $token"
[ "$(field openid <<<"$body")" = "$openid" ] || { echo "FAIL: /session names another openid" >&2; exit 1; }
expect 200 POST /dev/phone-payload -H "Authorization: Bearer $token" -d '{"phoneNumber":"13800138000"}'
payload=$body
expect 200 POST /phone -H "Authorization: Bearer $token" -H 'content-type: application/json' -d "$payload"
[ "$(field purePhoneNumber <<<"$body")" = "13800138000" ] || { echo "FAIL: wrong phone: $body" >&2; exit 1; }
expect 200 POST /phone -H "Authorization: Bearer $token" -d '{"code":"phone-13900139000"}'
[ "$(field purePhoneNumber <<<"$body")" = "13900139000" ] || { echo "FAIL: phone by code: $body" >&2; exit 1; }
expect 200 GET '/session?verify=wechat' -H "Authorization: Bearer $token"
expect 200 GET /me -H "Authorization: Bearer $token"
[ "$(field openid <<<"$body")" = "$openid" ] || { echo "FAIL: /me names another openid: $body" >&2; exit 1; }
[ "$(field userId <<<"$body")" = "$user_id" ] || { echo "FAIL: /me names another user: $body" >&2; exit 1; }
expect 200 GET /account -H "Authorization: Bearer $token"
[ "$(field purePhoneNumber <<<"$body")" = "13900139000" ] || { echo "FAIL: phone not bound: $body" >&2; exit 1; }
expect 200 POST /login -d '{"code":"newcomer-2","device":{"brand":"Apple","model":"iPhone 15"}}'
[ "$(field newUser <<<"$body")" = "False" ] || { echo "FAIL: second login is a new user: $body" >&2; exit 1; }
[ "$(field userId <<<"$body")" = "$user_id" ] || { echo "FAIL: second login is another user: $body" >&2; exit 1; }
second=$(field token <<<"$body")
expect 401 GET /session -H "Authorization: Bearer $token"
expect 204 DELETE /account -H "Authorization: Bearer $second"
expect 401 GET /account -H "Authorization: Bearer $second"
expect 200 POST /login -d '{"code":"newcomer-3"}'
[ "$(field newUser <<<"$body")" = "True" ] || { echo "FAIL: after deletion the account is not new: $body" >&2; exit 1; }
token=$(field token <<<"$body")
refresh=$(field refreshToken <<<"$body")
expect 200 POST /refresh -d "{\"refreshToken\":\"$refresh\"}"
[ "$(field userId <<<"$body")" != "$user_id" ] || { echo "FAIL: refresh names the deleted user" >&2; exit 1; }
renewed=$(field token <<<"$body")
expect 200 GET /session -H "Authorization: Bearer $renewed"
expect 200 GET /.well-known/jwks.json
expect 200 GET /.well-known/openid-configuration
[ "$(field issuer <<<"$body")" = "$base" ] || { echo "FAIL: issuer is not the server: $body" >&2; exit 1; }
# A service outside API Gateway checks the JWT with the JWKS (examples/jwks-node).
if [ -d "$root/examples/jwks-node/node_modules/jose" ]; then
  caller=$(node "$root/examples/jwks-node/verify.mjs" "$base" "$renewed")
  [ "$(field openid <<<"$caller")" != "" ] || { echo "FAIL: jwks-node: $caller" >&2; exit 1; }
  # Another first character of the signature (the last one may carry only
  # padding bits a decoder ignores).
  signature=${renewed##*.}
  case $signature in A*) flipped="B${signature#?}" ;; *) flipped="A${signature#?}" ;; esac
  if node "$root/examples/jwks-node/verify.mjs" "$base" "${renewed%.*}.$flipped" 2>/dev/null; then
    echo "FAIL: jwks-node accepted a tampered token" >&2; exit 1
  fi
  echo "ok: examples/jwks-node verified the JWT and refused a tampered one"
  passed=$((passed + 1))
else
  echo "FAIL: examples/jwks-node has no node_modules (infra/test.sh runs npm ci there)" >&2; exit 1
fi
expect 204 DELETE /session -H "Authorization: Bearer $renewed"
expect 401 POST /refresh -d "{\"refreshToken\":\"$refresh\"}"
expect 401 POST /login -d '{"code":"newcomer-1"}'
[ "$(field error <<<"$body")" = "invalid_code" ] || { echo "FAIL: code reuse: $body" >&2; exit 1; }
expect 401 GET /session
expect 401 GET /me
expect 429 POST /login -d '{"code":"errcode-45011"}'
expect 502 POST /login -d '{"code":"html"}'
[ "$(field error <<<"$body")" = "wechat_error" ] || { echo "FAIL: html answer: $body" >&2; exit 1; }
expect 502 POST /login -d '{"code":"noopenid"}'
expect 502 POST /login -d '{"code":"notjson"}'
grep -q 'path="/phone" status=200' "$log" || { echo "FAIL: no request log line" >&2; exit 1; }
if grep -q "$token" "$log"; then echo "FAIL: the token reached the log" >&2; exit 1; fi
echo "local smoke: $passed passed, 0 failed"

# The same server, checked against docs/openapi.yaml for every status of the error table.
python="${WXAUTH_PYTHON:-python3}"
"$python" "$root/tests/openapi_conformance.py" "$base"

# The H5 example in a real browser (Debian's Chromium, Playwright for
# Python; infra/test.sh installs both): an official account's page signing
# in through WeChat's OAuth redirect, screenshots under target/screenshots.
if "$python" -c 'import playwright' 2>/dev/null && [ -x "${WXAUTH_CHROMIUM:-/usr/bin/chromium}" ]; then
  "$python" "$root/tests/browser/h5_login.py" "$base" "$target/screenshots"
else
  echo "Playwright or Chromium missing next to $python: the browser check skipped (infra/test.sh installs them)"
fi

# API fuzzing: schemathesis generates requests from docs/openapi.yaml (bounded) and
# checks that nothing answers 5xx and every response conforms to the spec.
schemathesis="$(dirname "$python")/schemathesis"
if [ -x "$schemathesis" ]; then
  # tests/schemathesis_hooks.py: a fresh token per request (so generated
  # logouts cannot stop the fuzzing at 401), and a tally of the answers.
  report="$target/schemathesis-answers.json"
  PYTHONPATH="$root/tests" SCHEMATHESIS_HOOKS=schemathesis_hooks \
    WXAUTH_SCHEMATHESIS_BASE="$base" WXAUTH_SCHEMATHESIS_REPORT="$report" \
    "$schemathesis" run "$root/docs/openapi.yaml" --url "$base" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
    --max-examples "${SCHEMATHESIS_EXAMPLES:-100}" --generation-deterministic --no-color
  # Every authenticated route with a body must have been reached past the
  # token check: some answer that is not 401 unauthorized.
  python3 - "$report" <<'PY'
import json, sys
answers = json.load(open(sys.argv[1]))
for operation, counts in answers.items():
    print(f"schemathesis answers {operation}: {counts}")
authenticated = ["POST /phone", "POST /open-data", "POST /session", "GET /session",
                 "DELETE /session", "GET /account", "DELETE /account", "GET /me"]
stopped = [op for op in authenticated
           if not any(not a.startswith("401 unauthorized") for a in answers.get(op, {}))]
if stopped:
    sys.exit(f"FAIL: schemathesis never got past the token check on {stopped}")
print(f"schemathesis reached past the token check on all {len(authenticated)} authenticated operations")
PY
else
  echo "schemathesis not installed next to $python: skipped (infra/test.sh installs it)"
fi
