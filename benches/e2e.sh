#!/usr/bin/env bash
# End-to-end loopback throughput: ferry binaries against raw TCP (socat) in the same run.
#
#   benches/e2e.sh [SIZE_MIB] [RUNS]      (defaults: 1024 MiB, 3 runs; medians are printed)
#
# Needs socat (apt-get install socat). Builds the release binaries first. Every receiver
# writes to a file on the same disk and the raw-TCP receiver's file is fsynced, as ferry
# fsyncs before it acknowledges a file. All traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

size_mib=${1:-1024}
runs=${2:-3}
bins=${FERRY_BINS:-ferry-std}
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-e2e.XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

command -v socat >/dev/null || { echo "socat is required (apt-get install socat)" >&2; exit 1; }
cargo build --release -q -p ferry-cli
target=${CARGO_TARGET_DIR:-target}/release

head -c "$((size_mib << 20))" /dev/urandom > "$work/input"
bytes=$(stat -c %s "$work/input")

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mbps() { awk -v b="$bytes" -v s="$1" 'BEGIN {printf "%.0f", b / s / 1e6}'; }

# Raw TCP with 256 KiB buffers into `$1` (a file, fsynced, or /dev/null).
raw_once() {
    local dest=$1
    rm -f "$work/raw.out"
    socat -b 262144 -u TCP-LISTEN:17001,reuseaddr,bind=127.0.0.1 "OPEN:$dest,creat,trunc" &
    local rx=$!
    sleep 0.2
    local t0; t0=$(now)
    socat -b 262144 -u "OPEN:$work/input" TCP:127.0.0.1:17001
    wait "$rx"
    [ "$dest" = /dev/null ] || sync "$dest"
    awk -v a="$t0" -v b="$(now)" 'BEGIN {print b - a}'
}

ferry_once() {
    local bin=$1 addr=$2
    rm -rf "$work/root/input"
    local t0; t0=$(now)
    "$target/$bin" send "$work/input" --to "$addr" --key "$work/key" --compress off -q
    awk -v a="$t0" -v b="$(now)" 'BEGIN {print b - a}'
}

"$target/ferry-std" keygen --out "$work/key" -q

printf '%-12s %10s %10s %8s\n' "transfer" "seconds" "MB/s" "vs raw"
null=$(for _ in $(seq "$runs"); do raw_once /dev/null; done | median)
raw=$(for _ in $(seq "$runs"); do raw_once "$work/raw.out"; done | median)
printf '%-12s %10.3f %10s %8.2f   (network only: receiver discards)\n' "raw-tcp-null" "$null" "$(mbps "$null")" "$(awk -v r="$raw" -v t="$null" 'BEGIN {print r / t}')"
printf '%-12s %10.3f %10s %8s   (baseline: receiver writes a file, fsync)\n' "raw-tcp" "$raw" "$(mbps "$raw")" "1.00"
for bin in $bins; do
    mkdir -p "$work/root"
    "$target/$bin" serve --listen 127.0.0.1:0 --root "$work/root" --key "$work/key" -q > "$work/serve.out" &
    server=$!
    for _ in $(seq 50); do grep -q "listening on" "$work/serve.out" && break; sleep 0.1; done
    addr=$(sed -n 's/^listening on //p' "$work/serve.out")
    t=$(for _ in $(seq "$runs"); do ferry_once "$bin" "$addr"; done | median)
    cmp -s "$work/input" "$work/root/input" || { echo "$bin: received file differs" >&2; exit 1; }
    printf '%-12s %10.3f %10s %8.2f\n' "$bin" "$t" "$(mbps "$t")" "$(awk -v r="$raw" -v t="$t" 'BEGIN {print r / t}')"
    kill "$server"; wait "$server" 2>/dev/null || true
done
