#!/usr/bin/env bash
# Writes the test fixtures that `sam local generate-event` produces for the three
# HTTP event sources besides the HTTP API events in infra/events/:
#   bash infra/sam-events.sh [DIR]      (default tests/events; needs .tools/venv/bin/sam)
# tests/tests/sam_events.rs serves each of them to 200; infra/test.sh writes
# them again into a temporary folder and fails if they differ from the committed ones.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$root/tests/events}
sam=${SAM:-$root/.tools/venv/bin/sam}
mkdir -p "$out"
export SAM_CLI_TELEMETRY=0
# Run outside the repository so that samconfig.toml plays no part.
cd "$(mktemp -d)"
"$sam" local generate-event apigateway http-api-proxy --method POST --path login --stage prod \
  > "$out/http-api-proxy-login.json"
"$sam" local generate-event apigateway aws-proxy --method GET --path session --stage prod \
  > "$out/aws-proxy-session.json"
"$sam" local generate-event alb request --method POST --path phone \
  > "$out/alb-request-phone.json"
