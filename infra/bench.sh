#!/usr/bin/env bash
# The performance numbers in one command:
#   bash infra/bench.sh            criterion benchmarks + the cold-start table
#   bash infra/bench.sh --quick    a fast pass of both (what CI runs, unasserted)
#
# Builds the release binaries, starts DynamoDB Local and moto like the test
# command does, runs `cargo bench` on the hot paths, then the cold-start harness
# (tests/src/bin/coldstart.rs): 10 cold starts per function, 1,000 warm
# invocations, peak RSS and binary size, beside a Python reference
# implementation under awslambdaric, with the ratios.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=infra/lib.sh
source "$root/infra/lib.sh"
target=$(cargo_target_dir)

quick=()
[ "${1:-}" = "--quick" ] && quick=(--quick)

install_tools
step "building the release binaries"
cargo build --release --locked -p login -p decrypt-phone -p check-session -p authorizer -p rotate-signing-key -p tls-floor
export WXAUTH_BIN_DIR="$target/release"
start_standins

step "criterion: hot paths in-process (cargo bench -p wxauth --bench hot_paths)"
if [ ${#quick[@]} -gt 0 ]; then
  cargo bench --locked -p wxauth --bench hot_paths -- --quick --noplot
else
  cargo bench --locked -p wxauth --bench hot_paths
fi

step "cold starts, warm latency, RSS and size against the Python reference"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
WXAUTH_PYTHON="$venv/bin/python" cargo run --locked -q -p wxauth-tests --bin coldstart -- "${quick[@]}"

step "single-session login: transaction vs chained writes on DynamoDB Local (store_designs)"
cargo run --locked -q -p wxauth-tests --bin store_designs -- "${quick[@]}"
