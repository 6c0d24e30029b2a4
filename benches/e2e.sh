#!/usr/bin/env bash
# End-to-end benchmark: the ferry binaries side by side with raw TCP (socat), TLS 1.3 through
# socat, scp, sftp and rsync over a private sshd, and tar, all measured in the same run and
# printed as ONE table. Medians of RUNS runs; all traffic stays on 127.0.0.1.
#
#   benches/e2e.sh [SIZE_MIB] [RUNS]                  defaults: 1024 MiB, 3 runs
#   benches/e2e.sh --quick                            smoke run: 64 MiB, 1 run, 200 small files
#   benches/e2e.sh --link 100mbit [SIZE_MIB] [RUNS]   text over a rate-limited link (root)
#
# Sections (SECTIONS="random ssh text small" by default, or --sections random,text):
#   random  SIZE_MIB of /dev/urandom, --compress off: raw TCP into /dev/null, raw TCP into a
#           file + fsync (the BASELINE: ferry fsyncs), TLS 1.3 via socat, each ferry binary
#   ssh     adds scp (legacy protocol, -O), sftp and rsync (--whole-file, no delta) rows to
#           the random, text and small sections, against a private sshd this script starts
#           on 127.0.0.1:SSH_PORT (17022) with throwaway keys (alone: random data only).
#           Received data is fsynced inside the timing. Skipped with a note if no sshd.
#   text    SIZE_MIB of generated log-like text (deflate -1 shrinks it ~3.5x): raw TCP into a
#           file + fsync (BASELINE), TLS, each binary with --compress off and --compress
#           auto; the auto row's note gives the auto/off speedup
#   small   SMALL_FILES (1000) files of SMALL_KIB (4) KiB in one directory, one `send` of
#           the directory; BASELINE: tar c | socat -> socat | tar x, then fsync every file
#           and directory received (sync PATH...); TLS the same through TLS. Rate in files/s.
# TLS rows: socat OPENSSL with a throwaway self-signed certificate (openssl req), TLS 1.3
# only, TLS_AES_256_GCM_SHA384 only (forced through an OPENSSL_CONF and checked with
# openssl s_client before use); the receiver writes a file + fsync like the baseline.
# --link RATE (e.g. 100mbit) runs only the text section across two network namespaces
# joined by a RATE link (../shared/tools/netns.sh, or NETNS_SH; LINK_DELAY, default 1ms
# each way): servers and receivers in namespace a (10.77.0.1), clients in b (10.77.0.2).
# Default size there is 256 MiB. Needs root, iproute2 (and for kernels without netem:
# ethtool, gcc); the link is torn down on exit.
#
# Columns: seconds = median wall time of one transfer (process start to exit, then the
# fsync of what was received where the tool does not fsync itself); rate = MB/s (10^6
# bytes) or files/s; x raw = PAIRED ratio: every run of a row is preceded by a run of the
# section's baseline (raw TCP, or tar over raw TCP for small files), each pair gives
# baseline seconds / row seconds (1.00 = as fast as raw TCP, above 1 = faster), the column
# is the median of those ratios; cpu s/GB = median CPU seconds (user + sys, BOTH ends) per
# 10^9 bytes of payload: one-shot processes (socat, tar, the clients, sync) under GNU time,
# the long-running ferry server and sshd (with the per-connection children it reaped) by
# /proc/PID/stat deltas; srv/cli MiB = peak RSS (VmHWM of the ferry server over its runs;
# the client's max RSS from GNU time). "-" = unknown (GNU time missing).
# Each ferry row gets a fresh server; every row's received data is compared with the input.
#
# Tools: socat, openssl, openssh-server, openssh-client, rsync and GNU time are installed
# with apt-get when missing (root or sudo -n; INSTALL=0 to never install); a row whose tool
# is still missing is skipped with a note. socat is required.
# Environment: FERRY_BINS (default "ferry-std ferry-mio ferry-smol"), SECTIONS, RUNS,
# SIZE_MIB, SMALL_FILES, SMALL_KIB, SSH_PORT (17022), RAW_PORT (17001), SEND_TIMEOUT
# (seconds before a hung transfer is killed and reported; default 120 + SIZE_MIB), INSTALL,
# TMPDIR (inputs go to a temp dir under it, removed on exit), WARM_MIB (2 x SIZE_MIB written to
# /dev/shm and deleted before any run, untimed: lib/warm.sh; 0 skips it). Builds the release binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
# shellcheck source=benches/lib/common.sh
. benches/lib/common.sh
# shellcheck source=benches/lib/xfer.sh
. benches/lib/xfer.sh
# shellcheck source=benches/lib/warm.sh
. benches/lib/warm.sh

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { echo "e2e.sh: $*" >&2; exit 1; }

link=""
quick=0
pos=()
sections=${SECTIONS:-random ssh text small}
while [ $# -gt 0 ]; do
    case $1 in
        --link) [ $# -ge 2 ] || die "--link needs a rate (e.g. 100mbit)"; link=$2; shift 2 ;;
        --link=*) link=${1#*=}; shift ;;
        --sections) [ $# -ge 2 ] || die "--sections needs a list"; sections=$2; shift 2 ;;
        --sections=*) sections=${1#*=}; shift ;;
        --quick) quick=1; shift ;;
        -h | --help) usage; exit 0 ;;
        -*) usage >&2; exit 2 ;;
        *) pos+=("$1"); shift ;;
    esac
done
sections=${sections//,/ }
def_size=1024 def_runs=3 def_small=1000
[ "$quick" = 0 ] || { def_size=64; def_runs=1; def_small=200; }
if [ -n "$link" ]; then
    sections="link"
    [ "$quick" = 1 ] || def_size=256
fi
size_mib=${pos[0]:-${SIZE_MIB:-$def_size}}
runs=${pos[1]:-${RUNS:-$def_runs}}
bins=${FERRY_BINS:-ferry-std ferry-mio ferry-smol}
small_files=${SMALL_FILES:-$def_small}
small_kib=${SMALL_KIB:-4}
ssh_port=${SSH_PORT:-17022}
raw_port=${RAW_PORT:-17001}
send_timeout=${SEND_TIMEOUT:-}
for v in size_mib runs small_files small_kib ssh_port raw_port send_timeout; do
    [ "$v" != send_timeout ] || send_timeout=${send_timeout:-$((120 + size_mib))}
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
for s in $sections; do
    case $s in random | ssh | text | small | link) ;; *) die "unknown section '$s'" ;; esac
done
has() { [[ " $sections " == *" $1 "* ]]; }

# --- temp dir, cleanup -------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-e2e.XXXXXX")
netns_sh=""
link_up=0
made_run_sshd=0
cleanup() {
    local pids
    pids=$(jobs -p)
    # shellcheck disable=SC2086
    [ -z "$pids" ] || { kill $pids 2>/dev/null || true; wait $pids 2>/dev/null || true; }
    if [ -f "$work/ssh/sshd.pid" ]; then kill "$(cat "$work/ssh/sshd.pid")" 2>/dev/null || true; fi
    if [ "$link_up" = 1 ]; then "$netns_sh" down >/dev/null || echo "e2e.sh: netns.sh down failed" >&2; fi
    if [ "$made_run_sshd" = 1 ]; then rmdir /run/sshd 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

find_gnu_time
ensure_tools
find_gnu_time
command -v socat >/dev/null || die "socat is required (apt-get install socat)"

# --- where things run: loopback, or the two ends of the netns link -----------------------
run_a=()
run_b=()
host=127.0.0.1
if [ -n "$link" ]; then
    netns_sh=${NETNS_SH:-$repo/../shared/tools/netns.sh}
    [ -f "$netns_sh" ] || die "--link needs netns.sh (not found at $netns_sh; set NETNS_SH)"
    [ "$(id -u)" = 0 ] || die "--link needs root (network namespaces)"
    export FERRY_NS_PREFIX=${FERRY_NS_PREFIX:-ferry-e2e}
    run_a=("$netns_sh" a)
    run_b=("$netns_sh" b)
    host=10.77.0.1
fi

echo "building release binaries..." >&2
cargo build --release -q -p ferry-cli
target=${CARGO_TARGET_DIR:-target}/release
for bin in $bins; do [ -x "$target/$bin" ] || die "no binary $target/$bin"; done
first_bin=${bins%% *}
"$target/$first_bin" keygen --out "$work/key" -q > /dev/null

# Deterministic log-like text: 9-digit line number, level, module, words from a skewed
# 150-word vocabulary; per 64 KiB chunk deflate -1 gets ~3.5x. Exactly $1 MiB into $2.
gen_text() {
    awk -v mib="$1" '
    function rnd() { x = (x * 69069 + 1) % 4294967296; return x / 4294967296 }
    BEGIN {
        x = 12345; nw = 150; nl = 65536; total = mib * 1048576
        split("INFO INFO INFO INFO DEBUG DEBUG WARN ERROR", lvl, " ")
        split("session transfer codec disk server client adapter", mod, " ")
        for (i = 0; i < nw; i++) {
            n = 2 + int(rnd() * 8); w = ""
            for (j = 0; j < n; j++) w = w sprintf("%c", 97 + int(rnd() * rnd() * 26))
            word[i] = w
        }
        for (i = 0; i < nl; i++) {
            n = 4 + int(rnd() * 12); l = lvl[1 + int(rnd() * 8)] " " mod[1 + int(rnd() * 7)] ":"
            for (j = 0; j < n; j++) { r = rnd(); l = l " " word[int(nw * r * r * r)] }
            line[i] = l
        }
        for (out = 0; out < total; out += length(s)) {
            s = sprintf("%09d %s\n", seq++, line[int(rnd() * nl)])
            if (out + length(s) > total) s = substr(s, 1, total - out)
            printf "%s", s
        }
    }' > "$2"
}
# --- inputs ------------------------------------------------------------------------------
bytes=$((size_mib << 20))
warm_memory "$((2 * size_mib))"
mkdir -p "$work/in"
if has random || has ssh; then
    echo "generating $size_mib MiB random..." >&2
    head -c "$bytes" /dev/urandom > "$work/in/random.bin"
fi
text_note=""
if has text || has link; then
    echo "generating $size_mib MiB text..." >&2
    gen_text "$size_mib" "$work/in/text.txt"
    [ "$(stat -c %s "$work/in/text.txt")" = "$bytes" ] || die "text generator wrote the wrong size"
    text_note="gzip -1 on its first 8 MiB: $(head -c 8388608 "$work/in/text.txt" | gzip -1 | wc -c |
        awk -v n="$(head -c 8388608 "$work/in/text.txt" | wc -c)" '{printf "%.2fx", n / $1}')"
fi
if has small; then
    echo "generating $small_files x $small_kib KiB files..." >&2
    mkdir -p "$work/in/small"
    head -c "$((small_files * small_kib * 1024))" /dev/urandom |
        split -b "$((small_kib * 1024))" -a 6 -d - "$work/in/small/f"
    [ "$(find "$work/in/small" -type f | wc -l)" = "$small_files" ] || die "small files not generated"
fi

if [ -n "$link" ]; then
    echo "bringing up the $link link (netns.sh up ${LINK_DELAY:-1ms} 0% $link)..." >&2
    link_up=1
    "$netns_sh" up "${LINK_DELAY:-1ms}" 0% "$link" >&2 || die "netns.sh up failed"
fi

# --- rows ----------------------------------------------------------------------------------
# A section sets: sec (name), sec_src (input path), sec_units (bytes|files), sec_amount
# (bytes or files, for the rate), sec_bytes (payload bytes, for CPU/GB) and base_cmd (its
# baseline transfer, run before every run of every other row: see measure_paired).

# Was SRC received intact at DEST?
same() { diff -rq "$1" "$2" >/dev/null 2>&1; }

# The section's baseline row (unpaired); sets base_t.
baseline_row() { # label note
    if measure "${base_cmd[@]}"; then
        base_t=$T
        print_row "$1" 1.00 "" "BASELINE: $2"
    else
        fail_row "$1" "baseline transfer failed"
        return 1
    fi
}

# TLS 1.3 (AES-256-GCM) through socat, in the section's baseline shape (file or tar).
tls_row() { # kind dest [subdir of dest where the data lands]
    local kind=$1 dest=$2
    if [ -n "$tls_why" ]; then skip_row "tls1.3-socat" "skipped: $tls_why"; return 0; fi
    if measure_paired sock_once tls "$kind" "$sec_src" "$dest" &&
        same "$sec_src" "${dest}${3:-}"; then
        print_row "tls1.3-socat" "" "" "socat OPENSSL, TLS_AES_256_GCM_SHA384, + fsync"
    else
        fail_row "tls1.3-socat" "transfer failed or data differs"
    fi
    rm -rf "$dest"
}

# A ferry binary: fresh server, RUNS paired sends, check what arrived. Sets T.
ferry_row() { # label bin compress note [off-seconds]
    local label=$1 bin=$2 mode=$3 note=$4 off=${5:-} name
    name=$(basename "$sec_src")
    if ! start_server "$bin"; then fail_row "$label" "server did not start"; return 1; fi
    if ! measure_paired ferry_once "$bin" "$sec_src" "$mode"; then
        stop_server "$bin" || true
        fail_row "$label" "send failed (see above)"
        return 1
    fi
    if ! stop_server "$bin"; then fail_row "$label" "server died"; return 1; fi
    if ! same "$sec_src" "$work/root/$name"; then
        echo "e2e.sh: $bin: received $name differs from the input" >&2
        fail_row "$label" "received data differs"
        return 1
    fi
    [ -z "$off" ] || note="$note; auto/off speedup $(div "$off" "$T")x"
    print_row "$label" "" "$srv_rss" "$note"
    rm -rf "$work/root"
}

# scp, sftp and rsync rows against the private sshd (started once, on first use).
ssh_rows() {
    if [ -z "${sshd_state:-}" ]; then
        if start_sshd > "$work/sshd.why"; then sshd_state=up; else sshd_state=down; fi
    fi
    if [ "$sshd_state" = down ]; then
        skip_row "scp, sftp, rsync" "skipped: $(cat "$work/sshd.why")"
        return 0
    fi
    local tool label note
    for tool in scp sftp rsync; do
        label=$tool note="$ssh_ver, default cipher, + fsync"
        [ "$tool" = scp ] && [ ${#scp_legacy[@]} -gt 0 ] && label="scp -O"
        if [ "$tool" = rsync ]; then
            if ! command -v rsync >/dev/null; then
                skip_row rsync "skipped: rsync not installed (apt-get install rsync)"
                continue
            fi
            note="$(rsync --version | awk 'NR == 1 {print "rsync " $3}') --whole-file over ssh, + fsync"
        fi
        if measure_paired ssh_once "$tool" "$sec_src" &&
            same "$sec_src" "$work/ssh/dest/$(basename "$sec_src")"; then
            print_row "$label" "" "" "$note"
        else
            fail_row "$label" "transfer failed or data differs"
        fi
        rm -rf "$work/ssh/dest/$(basename "$sec_src")"
    done
}

random_section() {
    sec=random sec_src=$work/in/random.bin sec_units=bytes sec_amount=$bytes sec_bytes=$bytes
    base_cmd=(sock_once tcp file "$sec_src" "$work/raw.out")
    baseline_row raw-tcp "socat, receiver writes a file + fsync" || return 0
    if has random && measure sock_once tcp file "$sec_src" /dev/null; then
        print_row raw-tcp-null "$(div "$base_t" "$T")" "" "socat, receiver discards (network only)"
    fi
    rm -f "$work/raw.out"
    if has random; then
        tls_row file "$work/tls.out"
        for bin in $bins; do ferry_row "$bin" "$bin" off "--compress off" || true; done
    fi
    if has ssh; then ssh_rows; fi
    rm -f "$work/raw.out"
}

text_section() { # section name (text, or the link rate)
    sec=$1 sec_src=$work/in/text.txt sec_units=bytes sec_amount=$bytes sec_bytes=$bytes
    base_cmd=(sock_once tcp file "$sec_src" "$work/raw.out")
    baseline_row raw-tcp "socat text, receiver writes a file + fsync" || return 0
    rm -f "$work/raw.out"
    tls_row file "$work/tls.out"
    local off
    for bin in $bins; do
        off=""
        ferry_row "$bin off" "$bin" off "--compress off" && off=$T
        ferry_row "$bin auto" "$bin" auto "--compress auto" "$off" || true
    done
    if has ssh && [ -z "$link" ]; then ssh_rows; fi
    rm -f "$work/raw.out"
}

small_section() {
    local n=$small_files
    sec=small sec_src=$work/in/small sec_units=files sec_amount=$n
    sec_bytes=$((n * small_kib * 1024))
    base_cmd=(sock_once tcp tar "$sec_src" "$work/tar.out")
    baseline_row "tar|socat|tar x" "$n x $small_kib KiB, tar x then fsync each file+dir" || return 0
    same "$sec_src" "$work/tar.out/small" || fail_row "tar|socat|tar x" "received data differs"
    tls_row tar "$work/tls.out" /small
    for bin in $bins; do
        ferry_row "$bin" "$bin" off "$n x $small_kib KiB, one send of the directory" || true
    done
    if has ssh; then ssh_rows; fi
    rm -rf "$work/tar.out"
}

# --- the table -----------------------------------------------------------------------------
tls_why=""
if has random || has text || has small || has link; then
    tls_setup > "$work/tls.why" || tls_why=$(cat "$work/tls.why")
fi
failures=0
echo "ferry e2e $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?'): ${size_mib} MiB," \
    "median of $runs run(s), ${link:+$link link $host <- 10.77.0.2, }$(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "x raw: median over the runs of (baseline seconds / row seconds), each run paired with a" \
    "baseline run just before it; cpu s/GB: user+sys of both ends per 10^9 payload bytes"
[ -z "$text_note" ] || echo "text input: $text_note"
[ -n "$gnu_time" ] || echo "note: GNU time (/usr/bin/time) not installed: no CPU, no client RSS (apt-get install time)"
header

if has random || has ssh; then random_section; fi
if has text; then text_section text; fi
if has link; then text_section "$link"; fi
if has small; then small_section; fi

[ "$failures" = 0 ] || die "$failures row(s) failed (details above)"
