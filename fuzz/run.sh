#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 30) each, one after the other, from corpora seeded
# with the project's fixtures, and prints the executions each reached. A crash, a hang (an
# input taking over 10 s) or 2 GiB of memory fails the run; libFuzzer leaves the input in
# fuzz/artifacts/TARGET/.
#   fuzz/run.sh 30                          # the smoke run .ci/run does
#   fuzz/run.sh 600 scope url               # longer, chosen targets
#   FUZZ_RUNS=10000000 fuzz/run.sh 0        # a number of executions per target instead of a time
# FUZZ_ARGS="-max_len=1024" passes more libFuzzer flags. FUZZ_SEED=N changes libFuzzer's
# random seed (default 1: a smoke run mutates the same way each time, so CI fails only on a
# change of code, not of luck).
# Needs nightly and cargo-fuzz (`cargo install cargo-fuzz --locked`).
# Built with debug assertions (integer overflow panics) and no sanitizer: neither crate has any
# `unsafe`, so AddressSanitizer would halve the executions and find nothing Rust does not check.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-30}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    listed=$(cargo +nightly fuzz list)
    mapfile -t targets <<<"$listed"
fi
if [ ${#targets[@]} -eq 0 ] || [ -z "${targets[0]}" ]; then
    echo "fuzz/run.sh: no fuzz targets found" >&2
    exit 1
fi
if [ -z "${FUZZ_RUNS:-}" ] && [ "$seconds" -le 0 ]; then
    echo "fuzz/run.sh: SECONDS must be positive (or set FUZZ_RUNS)" >&2
    exit 1
fi
python3 seed.py
flags=(--release --debug-assertions --sanitizer none)
cargo +nightly fuzz build "${flags[@]}"
if [ -n "${FUZZ_RUNS:-}" ]; then
    budget=(-runs="$FUZZ_RUNS")
else
    budget=(-max_total_time="$seconds")
fi
for t in "${targets[@]}"; do
    log=$(mktemp)
    start=$(date +%s)
    if ! cargo +nightly fuzz run "${flags[@]}" "$t" corpus/"$t" -- \
        "${budget[@]}" ${FUZZ_ARGS:-} -seed="${FUZZ_SEED:-1}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "fuzz target $t FAILED (input saved under fuzz/artifacts/$t/)" >&2
        exit 1
    fi
    execs=$(awk '/stat::number_of_executed_units/ { print $2 }' "$log")
    echo "fuzz $t: ${execs:-?} executions in $(($(date +%s) - start)) s, no crash"
    rm -f "$log"
done
