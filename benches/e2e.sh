#!/usr/bin/env bash
# End-to-end benchmark: the ferry binaries side by side with raw TCP (socat), scp/sftp and
# tar, all measured in the same run, medians of RUNS runs. All traffic stays on 127.0.0.1.
#
#   benches/e2e.sh [SIZE_MIB] [RUNS]                  defaults: 1024 MiB, 3 runs
#   benches/e2e.sh --link 100mbit [SIZE_MIB] [RUNS]   text over a rate-limited link (root)
#
# Sections (SECTIONS="random ssh text small" by default, or --sections random,text):
#   random  SIZE_MIB of /dev/urandom, --compress off: raw TCP into /dev/null, raw TCP into a
#           file + fsync (the BASELINE of this section: ferry fsyncs), each ferry binary
#   ssh     the same random file by scp (legacy protocol, -O) and sftp against a private
#           sshd this script starts on 127.0.0.1:SSH_PORT (17022) with throwaway keys; the
#           received file is fsynced inside the timing. Skipped with a note if no sshd.
#   text    SIZE_MIB of generated log-like text (deflate -1 shrinks it ~3.5x): raw TCP into a
#           file + fsync (BASELINE), each binary with --compress off and --compress auto;
#           the auto row's note gives the auto/off speedup
#   small   SMALL_FILES (1000) files of SMALL_KIB (4) KiB in one directory, one `send` of
#           the directory; BASELINE: tar c | socat -> socat | tar x, then fsync every file
#           and directory received (sync PATH...). Rate in files/s.
# --link RATE (e.g. 100mbit) runs only the text section across two network namespaces
# joined by a RATE link (../shared/tools/netns.sh, or NETNS_SH; LINK_DELAY, default 1ms
# each way): servers and receivers in namespace a (10.77.0.1), clients in b (10.77.0.2).
# Default size there is 256 MiB. Needs root, iproute2 (and for kernels without netem:
# ethtool, gcc); the link is torn down on exit.
#
# Columns: seconds = median wall time of one transfer (process start to exit; for raw
# TCP/tar until the receiver has finished and fsynced); rate = MB/s (10^6 bytes) or files/s;
# vs base = baseline seconds / row seconds (1.00 = as fast as the section's baseline,
# above 1 = faster); srv/cli MiB = peak RSS (VmHWM of the server over its runs; the
# client's max RSS from GNU time, /usr/bin/time -f %M: "-" if GNU time is missing).
# Each ferry row gets a fresh server and its received data is compared with the input.
#
# Environment: FERRY_BINS (default "ferry-std ferry-mio ferry-smol"), SECTIONS, RUNS,
# SIZE_MIB, SMALL_FILES, SMALL_KIB, SSH_PORT (17022), RAW_PORT (17001), SEND_TIMEOUT
# (seconds before a hung transfer is killed and reported; default 120 + SIZE_MIB),
# TMPDIR (inputs go to a temp dir under it, removed on exit).
# Needs socat (apt-get install socat); builds the release binaries first.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { echo "e2e.sh: $*" >&2; exit 1; }

link=""
pos=()
sections=${SECTIONS:-random ssh text small}
while [ $# -gt 0 ]; do
    case $1 in
        --link) [ $# -ge 2 ] || die "--link needs a rate (e.g. 100mbit)"; link=$2; shift 2 ;;
        --link=*) link=${1#*=}; shift ;;
        --sections) [ $# -ge 2 ] || die "--sections needs a list"; sections=$2; shift 2 ;;
        --sections=*) sections=${1#*=}; shift ;;
        -h | --help) usage; exit 0 ;;
        -*) usage >&2; exit 2 ;;
        *) pos+=("$1"); shift ;;
    esac
done
sections=${sections//,/ }
if [ -n "$link" ]; then
    sections="link"
    size_mib=${pos[0]:-${SIZE_MIB:-256}}
else
    size_mib=${pos[0]:-${SIZE_MIB:-1024}}
fi
runs=${pos[1]:-${RUNS:-3}}
bins=${FERRY_BINS:-ferry-std ferry-mio ferry-smol}
small_files=${SMALL_FILES:-1000}
small_kib=${SMALL_KIB:-4}
ssh_port=${SSH_PORT:-17022}
raw_port=${RAW_PORT:-17001}
send_timeout=${SEND_TIMEOUT:-$((120 + size_mib))}
for v in size_mib runs small_files small_kib ssh_port raw_port send_timeout; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
for s in $sections; do
    case $s in random | ssh | text | small | link) ;; *) die "unknown section '$s'" ;; esac
done
has() { [[ " $sections " == *" $1 "* ]]; }

command -v socat >/dev/null || die "socat is required (apt-get install socat)"
gnu_time=""
if [ -x /usr/bin/time ] && /usr/bin/time -f %M -o /dev/null true 2>/dev/null; then
    gnu_time=/usr/bin/time
fi

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
"$target/$first_bin" keygen --out "$work/key" -q

# --- helpers -----------------------------------------------------------------------------
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.6f\n", b - a}'; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN {printf "%.0f MB/s", b / s / 1e6}'; }
fps() { awk -v n="$1" -v s="$2" 'BEGIN {printf "%.0f files/s", n / s}'; }
mib() { if [ -n "$1" ]; then awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; else echo -; fi; }

line() { printf '%-7s %-18s %8s %13s %7s %7s %7s  %s\n' "$@"; }
row() { # section transfer seconds rate vs-base srv-KiB cli-KiB note
    line "$1" "$2" "$(awk -v s="$3" 'BEGIN {printf "%.3f", s}')" "$4" "$5" \
        "$(mib "$6")" "$(mib "$7")" "$8"
}
skip_row() { line "$1" "$2" - - - - - "$3"; }
fail_row() { line "$1" "$2" - - - - - "FAILED: $3"; failures=$((failures + 1)); }
failures=0

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

# Start `$1 serve` (in namespace a with --link) on a free port, fresh root.
# Sets srv_job (for kill/wait), srv_pid (the ferry process, for VmHWM), srv_addr.
start_server() {
    local bin=$1
    rm -rf "$work/root"
    mkdir -p "$work/root"
    : > "$work/serve.out"
    "${run_a[@]}" "$target/$bin" serve --listen "$host:0" --root "$work/root" --key "$work/key" -q \
        > "$work/serve.out" 2> "$work/serve.err" &
    srv_job=$!
    srv_addr=""
    for _ in $(seq 100); do
        srv_addr=$(sed -n 's/^listening on //p' "$work/serve.out")
        if [ -n "$srv_addr" ] || ! kill -0 "$srv_job" 2>/dev/null; then break; fi
        sleep 0.1
    done
    if [ -z "$srv_addr" ]; then
        echo "e2e.sh: $bin serve did not print 'listening on' within 10 s; stderr:" >&2
        sed 's/^/  /' "$work/serve.err" >&2
        kill "$srv_job" 2>/dev/null || true; wait "$srv_job" 2>/dev/null || true
        return 1
    fi
    # netns.sh and `ip netns exec` exec into the server, but look one level down in case
    srv_pid=$srv_job
    if [ "$(cat "/proc/$srv_pid/comm" 2>/dev/null)" != "${bin:0:15}" ]; then
        local child
        child=$(cat "/proc/$srv_job/task/$srv_job/children" 2>/dev/null || true)
        srv_pid=${child%% *}
    fi
}

# Stop the server; sets srv_rss (KiB, VmHWM read just before the kill; "" if unknown).
# Fails if the server had already died.
stop_server() {
    local bin=$1 alive=1
    srv_rss=$(awk '/^VmHWM:/ {print $2}' "/proc/${srv_pid:-0}/status" 2>/dev/null || true)
    kill -0 "$srv_job" 2>/dev/null || alive=0
    kill "$srv_job" 2>/dev/null || true
    wait "$srv_job" 2>/dev/null || true
    if [ "$alive" = 0 ]; then
        echo "e2e.sh: $bin serve exited during the test; stderr:" >&2
        sed 's/^/  /' "$work/serve.err" >&2
        return 1
    fi
}

# One timed `send` to the running server: prints seconds, records the client's peak RSS.
ferry_once() { # bin path compress
    local bin=$1 path=$2 mode=$3 t0 rc=0 wrap=()
    rm -rf "${work:?}/root/$(basename "$path")"
    [ -z "$gnu_time" ] || wrap=("$gnu_time" -f %M -o "$work/cli.rss.1")
    t0=$(now)
    "${run_b[@]}" "${wrap[@]}" timeout "$send_timeout" "$target/$bin" send "$path" \
        --to "$srv_addr" --key "$work/key" --compress "$mode" -q 2> "$work/send.err" || rc=$?
    if [ "$rc" != 0 ]; then
        if [ "$rc" = 124 ]; then
            echo "e2e.sh: $bin send $path --compress $mode: no exit after ${send_timeout}s (hang?), killed" >&2
        else
            echo "e2e.sh: $bin send $path --compress $mode exited with status $rc" >&2
        fi
        sed 's/^/  /' "$work/send.err" >&2
        return 1
    fi
    since "$t0"
    [ -z "$gnu_time" ] || tail -n 1 "$work/cli.rss.1" >> "$work/cli.rss"
}

# RUNS timed transfers of one kind: sets T (median seconds) and CLI_RSS (max KiB or "").
measure() {
    : > "$work/times"
    : > "$work/cli.rss"
    for _ in $(seq "$runs"); do
        sync # start each run with no dirty pages queued (outside the timing)
        "$@" >> "$work/times" || return 1
    done
    T=$(median < "$work/times")
    CLI_RSS=$(sort -n "$work/cli.rss" | tail -n 1)
}

# A ferry row: fresh server, RUNS sends, check what arrived, peak RSS of both sides.
ferry_row() { # section label bin path compress base-seconds units(bytes|files) amount note [off-seconds]
    local sec=$1 label=$2 bin=$3 path=$4 mode=$5 base=$6 units=$7 amount=$8 note=${9:-} off=${10:-}
    local name
    name=$(basename "$path")
    if ! start_server "$bin"; then fail_row "$sec" "$label" "server did not start"; return 1; fi
    if ! measure ferry_once "$bin" "$path" "$mode"; then
        stop_server "$bin" || true
        fail_row "$sec" "$label" "send failed (see above)"
        return 1
    fi
    if ! stop_server "$bin"; then fail_row "$sec" "$label" "server died"; return 1; fi
    if ! diff -rq "$path" "$work/root/$name" >/dev/null 2>&1; then
        echo "e2e.sh: $bin: received $name differs from the input" >&2
        fail_row "$sec" "$label" "received data differs"
        return 1
    fi
    local rate
    if [ "$units" = files ]; then rate=$(fps "$amount" "$T"); else rate=$(mbps "$amount" "$T"); fi
    [ -z "$off" ] || note="$note; auto/off speedup $(div "$off" "$T")x"
    row "$sec" "$label" "$T" "$rate" "$(div "$base" "$T")" "$srv_rss" "$CLI_RSS" "$note"
}

# Raw TCP with 256 KiB buffers from file $1 into $2 (a file, fsynced, or /dev/null).
raw_once() {
    local src=$1 dest=$2 t0 rx rc=0
    rm -f "$work/raw.out"
    "${run_a[@]}" socat -b 262144 -u "TCP-LISTEN:$raw_port,reuseaddr,bind=$host" "OPEN:$dest,creat,trunc" &
    rx=$!
    sleep 0.2
    t0=$(now)
    "${run_b[@]}" timeout "$send_timeout" socat -b 262144 -u "OPEN:$src" \
        "TCP:$host:$raw_port,retry=50,interval=0.1" || rc=$?
    wait "$rx" || rc=$?
    [ "$rc" = 0 ] || { echo "e2e.sh: raw socat transfer failed ($rc)" >&2; return 1; }
    [ "$dest" = /dev/null ] || sync "$dest"
    since "$t0"
}

# tar c DIR | socat  ->  socat | tar x, then fsync every received file and directory.
tar_once() {
    local dir=$1 t0 rx rc=0
    rm -rf "$work/tar.out"
    mkdir -p "$work/tar.out"
    socat -b 262144 -u "TCP-LISTEN:$raw_port,reuseaddr,bind=$host" STDOUT | tar x -C "$work/tar.out" &
    rx=$!
    sleep 0.2
    t0=$(now)
    tar c -C "$(dirname "$dir")" "$(basename "$dir")" |
        timeout "$send_timeout" socat -b 262144 -u STDIN "TCP:$host:$raw_port,retry=50,interval=0.1" || rc=$?
    wait "$rx" || rc=$?
    [ "$rc" = 0 ] || { echo "e2e.sh: tar | socat transfer failed ($rc)" >&2; return 1; }
    find "$work/tar.out" -exec sync {} +
    since "$t0"
}

# scp / sftp of $1 to the private sshd; the received file is fsynced inside the timing.
scp_once() {
    local src=$1 t0 rc=0 wrap=()
    rm -f "$work/ssh/dest/$(basename "$src")"
    [ -z "$gnu_time" ] || wrap=("$gnu_time" -f %M -o "$work/cli.rss.1")
    t0=$(now)
    "${wrap[@]}" timeout "$send_timeout" scp "${scp_legacy[@]}" -q -F "$work/ssh/config" "$src" \
        "bench:$work/ssh/dest/" 2> "$work/ssh/client.err" || rc=$?
    [ "$rc" = 0 ] || { echo "e2e.sh: scp failed ($rc):" >&2; cat "$work/ssh/client.err" >&2; return 1; }
    sync "$work/ssh/dest/$(basename "$src")"
    since "$t0"
    [ -z "$gnu_time" ] || tail -n 1 "$work/cli.rss.1" >> "$work/cli.rss"
}
sftp_once() {
    local src=$1 t0 rc=0 wrap=()
    rm -f "$work/ssh/dest/$(basename "$src")"
    printf 'put "%s" "%s/"\n' "$src" "$work/ssh/dest" > "$work/ssh/batch"
    [ -z "$gnu_time" ] || wrap=("$gnu_time" -f %M -o "$work/cli.rss.1")
    t0=$(now)
    "${wrap[@]}" timeout "$send_timeout" sftp -q -b "$work/ssh/batch" -F "$work/ssh/config" bench \
        > /dev/null 2> "$work/ssh/client.err" || rc=$?
    [ "$rc" = 0 ] || { echo "e2e.sh: sftp failed ($rc):" >&2; cat "$work/ssh/client.err" >&2; return 1; }
    sync "$work/ssh/dest/$(basename "$src")"
    since "$t0"
    [ -z "$gnu_time" ] || tail -n 1 "$work/cli.rss.1" >> "$work/cli.rss"
}

# Private sshd on 127.0.0.1:$ssh_port as the current user; prints why not on failure.
start_sshd() {
    local sshd ssh=$work/ssh
    sshd=$(command -v sshd || true)
    [ -n "$sshd" ] || [ ! -x /usr/sbin/sshd ] || sshd=/usr/sbin/sshd
    [ -n "$sshd" ] || { echo "sshd not installed (apt-get install openssh-server)"; return 1; }
    for c in ssh-keygen scp sftp; do
        command -v "$c" >/dev/null || { echo "$c not installed (apt-get install openssh-client)"; return 1; }
    done
    if (exec 3<>"/dev/tcp/127.0.0.1/$ssh_port") 2>/dev/null; then
        echo "127.0.0.1:$ssh_port is in use (set SSH_PORT)"; return 1
    fi
    mkdir -p "$ssh/dest"
    chmod 700 "$ssh"
    ssh-keygen -q -t ed25519 -N '' -f "$ssh/host_key" -C e2e-host
    ssh-keygen -q -t ed25519 -N '' -f "$ssh/id" -C e2e-client
    cp "$ssh/id.pub" "$ssh/authorized_keys"
    cat > "$ssh/sshd_config" <<EOF
ListenAddress 127.0.0.1:$ssh_port
HostKey $ssh/host_key
PidFile $ssh/sshd.pid
AuthorizedKeysFile $ssh/authorized_keys
AllowUsers $(id -un)
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
LogLevel ERROR
EOF
    cat > "$ssh/config" <<EOF
Host bench
    HostName 127.0.0.1
    Port $ssh_port
    User $(id -un)
    IdentityFile $ssh/id
    IdentitiesOnly yes
    UserKnownHostsFile $ssh/known_hosts
    StrictHostKeyChecking no
    BatchMode yes
    LogLevel ERROR
EOF
    # sshd run as root wants its privilege separation directory
    if [ "$(id -u)" = 0 ] && [ ! -d /run/sshd ]; then mkdir -p /run/sshd && made_run_sshd=1; fi
    "$sshd" -t -f "$ssh/sshd_config" 2> "$ssh/sshd.err" || { echo "sshd -t failed: $(head -c 300 "$ssh/sshd.err")"; return 1; }
    "$sshd" -D -e -f "$ssh/sshd_config" > /dev/null 2> "$ssh/sshd.err" &
    for _ in $(seq 50); do
        ssh -F "$ssh/config" bench true 2>/dev/null && return 0
        sleep 0.1
    done
    echo "private sshd did not accept a login: $(head -c 300 "$ssh/sshd.err")"
    return 1
}

# --- inputs ------------------------------------------------------------------------------
bytes=$((size_mib << 20))
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

# --- the table ---------------------------------------------------------------------------
echo "ferry e2e $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?'): ${size_mib} MiB," \
    "median of $runs run(s), ${link:+$link link $host <- 10.77.0.2, }$(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg)"
[ -z "$text_note" ] || echo "text input: $text_note"
[ -n "$gnu_time" ] || echo "note: GNU time (/usr/bin/time) not installed: no client RSS (apt-get install time)"
line section transfer seconds rate "vs base" "srv MiB" "cli MiB" note

if has random; then
    measure raw_once "$work/in/random.bin" /dev/null
    null=$T
    measure raw_once "$work/in/random.bin" "$work/raw.out"
    raw=$T
    rm -f "$work/raw.out"
    row random raw-tcp-null "$null" "$(mbps "$bytes" "$null")" "$(div "$raw" "$null")" "" "" \
        "socat, receiver discards (network only)"
    row random raw-tcp "$raw" "$(mbps "$bytes" "$raw")" 1.00 "" "" \
        "BASELINE: socat, receiver writes a file + fsync"
    for bin in $bins; do
        ferry_row random "$bin" "$bin" "$work/in/random.bin" off "$raw" bytes "$bytes" "--compress off" || true
    done
fi

if has ssh; then
    if [ -z "${raw:-}" ]; then
        measure raw_once "$work/in/random.bin" "$work/raw.out"
        raw=$T
        rm -f "$work/raw.out"
        row ssh raw-tcp "$raw" "$(mbps "$bytes" "$raw")" 1.00 "" "" "BASELINE: socat, receiver writes a file + fsync"
    fi
    if start_sshd > "$work/sshd.why"; then
        scp_legacy=()
        # OpenSSH >= 9.0 scp speaks SFTP unless -O; ask for the classic protocol when known
        grep -q -- '-[0-9A-Za-z]*O' <<< "$(scp 2>&1 || true)" && scp_legacy=(-O)
        ssh_ver=$(ssh -V 2>&1 | cut -d, -f1)
        for kind in scp sftp; do
            label=$kind
            [ "$kind" = scp ] && [ ${#scp_legacy[@]} -gt 0 ] && label="scp -O"
            if measure "${kind}_once" "$work/in/random.bin" &&
                cmp -s "$work/in/random.bin" "$work/ssh/dest/random.bin"; then
                row ssh "$label" "$T" "$(mbps "$bytes" "$T")" "$(div "$raw" "$T")" "" "$CLI_RSS" \
                    "$ssh_ver, default cipher, + fsync"
            else
                fail_row ssh "$label" "transfer failed or data differs"
            fi
        done
        kill "$(cat "$work/ssh/sshd.pid")" 2>/dev/null || true
    else
        skip_row ssh "scp, sftp" "skipped: $(cat "$work/sshd.why")"
    fi
    rm -rf "$work/ssh/dest"
fi

text_section() { # section
    local sec=$1 base off
    measure raw_once "$work/in/text.txt" "$work/raw.out"
    base=$T
    rm -f "$work/raw.out"
    row "$sec" raw-tcp "$base" "$(mbps "$bytes" "$base")" 1.00 "" "" \
        "BASELINE: socat text, receiver writes a file + fsync"
    for bin in $bins; do
        off=""
        ferry_row "$sec" "$bin off" "$bin" "$work/in/text.txt" off "$base" bytes "$bytes" "--compress off" &&
            off=$T
        ferry_row "$sec" "$bin auto" "$bin" "$work/in/text.txt" auto "$base" bytes "$bytes" \
            "--compress auto" "$off" || true
    done
}
if has text; then text_section text; fi
if has link; then text_section "$link"; fi

if has small; then
    n=$small_files
    measure tar_once "$work/in/small"
    tarbase=$T
    if diff -r "$work/in/small" "$work/tar.out/small" >/dev/null; then
        row small "tar|socat|tar x" "$tarbase" "$(fps "$n" "$tarbase")" 1.00 "" "" \
            "BASELINE: $n x $small_kib KiB, tar x then fsync each file+dir"
    else
        fail_row small "tar|socat|tar x" "received data differs"
    fi
    rm -rf "$work/tar.out"
    for bin in $bins; do
        ferry_row small "$bin" "$bin" "$work/in/small" off "$tarbase" files "$n" \
            "$n x $small_kib KiB, one send of the directory" || true
    done
fi

[ "$failures" = 0 ] || die "$failures row(s) failed (details above)"
