#!/usr/bin/env bash
# Fuzz smoke run: build every cargo-fuzz target with nightly and run each for a bounded time,
# failing on the first crash, timeout or out-of-memory.
#
#   fuzz/smoke.sh [SECONDS_PER_TARGET]     (default 30)
#
# Each target starts from its committed corpus (fuzz/corpus/<target>/, read only) plus a scratch
# corpus in fuzz/corpus-work/<target>/ where new inputs go (not committed; delete it freely).
# A crash leaves its input in fuzz/artifacts/<target>/: copy it to fuzz/corpus/<target>/ as a
# regression once fixed (`cargo test -p ferry-core --test fuzz_corpus` replays it on stable;
# `--test fuzz_corpus_dgram` for the dgram_* targets).
# Runs one target at a time (libFuzzer with one worker).
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-30}
case $secs in '' | *[!0-9]*) echo "usage: $0 [seconds per target]" >&2; exit 2 ;; esac

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzzing needs a nightly toolchain (rustup toolchain install nightly)" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

cargo +nightly fuzz build
targets=$(cargo +nightly fuzz list)

summary=()
for t in $targets; do
    work=fuzz/corpus-work/$t
    mkdir -p "$work" "fuzz/corpus/$t"
    log=$(mktemp)
    echo "=== fuzz $t for ${secs}s"
    if ! cargo +nightly fuzz run "$t" "$work" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz target $t failed: see fuzz/artifacts/$t/" >&2
        exit 1
    fi
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
    cov=$(grep -o 'cov: [0-9]*' <<<"$done_line" | grep -o '[0-9]*' || echo '?')
    ft=$(grep -o 'ft: [0-9]*' <<<"$done_line" | grep -o '[0-9]*' || echo '?')
    summary+=("$(printf '%-18s execs %-10s cov %-6s ft %s' "$t" "$execs" "$cov" "$ft")")
    rm -f "$log"
done

echo
echo "=== fuzz smoke: every target ran ${secs}s without a crash"
printf '%s\n' "${summary[@]}"
