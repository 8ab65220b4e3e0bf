#!/usr/bin/env bash
# Fuzzes the decrypt path, request-body parsing, API Gateway event handling,
# token parsing, the authorizer's events, JWT checking and POST /refresh bodies with cargo-fuzz (libFuzzer) for a bounded time per target.
#   bash infra/fuzz.sh          10 s per target (what CI runs)
#   bash infra/fuzz.sh 600      ten minutes per target
# cargo-fuzz is installed from crates.io when absent. RUSTC_BOOTSTRAP=1 lets it
# pass its flags to the stable toolchain; `-s none` skips AddressSanitizer: the
# code under test is safe Rust, and what we hunt is panics, aborts and hangs.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${1:-10}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
cd "$root/fuzz"
export RUSTC_BOOTSTRAP=1
cargo fuzz build -s none
# Logs beside the fuzz crate, whatever CARGO_TARGET_DIR says about the build.
logs="$root/fuzz/logs"
mkdir -p "$logs"
total=0
for target in decrypt request_body api_gateway_event token authorizer_event jwt refresh_body; do
  log="$logs/$target.log"
  echo "==> fuzzing $target for ${seconds}s"
  # -timeout: any single input taking over 10 s is a hang and fails the run.
  cargo fuzz run -s none "$target" -- -max_total_time="$seconds" -timeout=10 -print_final_stats=1 2>&1 | tee "$log" | grep -E "^#[0-9]+ +DONE|stat::number_of_executed_units|SUMMARY|panicked" || true
  runs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
  [ -n "$runs" ] || { echo "fuzz target $target did not finish cleanly; see $log" >&2; exit 1; }
  total=$((total + runs))
done
echo "fuzz: $total executions, 0 crashes"
