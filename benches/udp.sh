#!/usr/bin/env bash
# UDP-mode benchmark (issue 17 item 5): ferry over UDP against ferry over TCP, UFTP, raw TCP
# and iperf3, on loopback and through emulated links; every baseline is measured in the same
# invocation and each ferry UDP row is checked against the issue's "Done when" bound.
#
#   benches/udp.sh                                    every section (~12 min; root for netns)
#   benches/udp.sh --sections loopback,lossy          a subset (comma or space separated)
#   SIZE_MIB=64 RUNS=1 NET_SECS=4 benches/udp.sh      a quick check
#
# Sections:
#   loopback  SIZE_MIB (1024) of /dev/urandom on 127.0.0.1, encrypted, median of RUNS (3):
#             raw TCP (socat, receiver writes a file + fsync), UFTP with AES-256-GCM at each
#             rate of UFTP_RATES (the fastest is the "uftp" baseline), then for each of
#             FERRY_BINS: ferry over TCP and ferry over UDP (--udp), --compress off.
#             Bound: ferry UDP >= 2 x uftp and >= 0.6 x the same binary over TCP.
#   lossy     netns.sh links of 20 ms RTT (10ms each way) with 0 %, 1 % and 5 % loss.
#   fair      a 20 ms RTT link with a 100mbit bottleneck (tbf at each end): the single-flow
#             rows; then, through a router-like 100mbit bottleneck (the same tbf on an ifb
#             device at the receiver's ingress, none on the sender's egress), two ferry UDP
#             flows at once (bound: each gets 40-60 %), ferry (default controller)
#             beside one iperf3 CUBIC flow, once with each starting 1 s first (bound: ferry
#             gets 35-65 % on the mean of both orders: the first flow fills the 100 ms queue
#             in slow start and CUBIC evens the windows out over minutes, not seconds), and
#             two iperf3 CUBIC flows started 1 s apart (the kernel's own split), each for
#             FAIR_SECS (20). FAIR_HOST_QDISC=1 adds the same two-flow rows
#             without bounds through the tbf on the sender's egress, where kernel TCP's
#             small-queue limit (TSQ) keeps it to a few packets of the shared queue.
#   long      200 ms RTT, 2 % loss, 500mbit (netns.sh up 100ms 2% 500mbit), LONG_SECS (20).
# On each link: iperf3 TCP with CUBIC and with BBR (-C), ferry over TCP (the namespaces'
# default congestion control, printed in the table), ferry over UDP with --cc cubic and with
# --cc bbr, each for NET_SECS (10) seconds. Bounds on those links: 1 % loss: cubic >= 1.0 x
# iperf3-cubic, bbr >= 0.8 x iperf3-bbr and >= 20 x iperf3-cubic; 5 % loss: cubic >= 1.0 x
# iperf3-cubic, bbr >= 0.5 x iperf3-bbr; 0 % loss (with or without the bottleneck): each
# controller >= 0.5 x iperf3 with the namespaces' default controller; long: bbr >= 300 Mbit/s.
#
# How a link transfer is timed: the ferry client (namespace b, 10.77.0.2) sends standard
# input (`send - --as NAME`) to the server (namespace a, 10.77.0.1); the input is a random
# file cut after NET_SECS seconds or NET_MAX_MIB (1024) MiB, whichever comes first, so
# every transfer is bounded in time and size. Rate = bytes received / wall time of the
# client (process start, handshake and the drain after the input ends included); the
# received file must equal the input's prefix. iperf3 rates are the receiver's figure.
# Before the runs the TCP buffer limits inside both namespaces are raised to TCP_MEM_MAX
# bytes (net.ipv4.tcp_rmem/tcp_wmem, 67108864; 0 leaves them), as research/udp.md §7 says.
# net.core.rmem_max/wmem_max (UDP buffers) cannot be raised inside a namespace and are not
# touched outside; their value is printed.
#
# Table: scenario, tool, rate (MB/s = 10^6 bytes/s on loopback, Mbit/s on links), the ratio
# against the named baseline of the same invocation, and PASS/FAIL against the bound (or
# "-" where the issue names none). Exit status 1 if a transfer failed (bounds do not
# change the exit status).
#
# Environment: SECTIONS (as --sections), FERRY_BINS ("ferry-std ferry-mio ferry-smol",
# loopback), NET_BINS (ferry-std; the binaries run on links), SIZE_MIB, RUNS, NET_RUNS (1:
# median of that many runs per link row), NET_SECS, FAIR_SECS, LONG_SECS, NET_MAX_MIB,
# UFTP_RATES ("-1 2000000": uftp -R in Kbit/s, -1 = as fast as the interface allows),
# TCP_MEM_MAX, SEND_TIMEOUT (loopback, 120 + SIZE_MIB s), FERRY_BIN_DIR (use the binaries
# there instead of `cargo build --release -p ferry-cli`), NETNS_SH (path to netns.sh),
# FERRY_NS_PREFIX (ferry-ubench), FERRY_NETEM (netns.sh backend), WARM_MIB (twice the larger
# input, written to /dev/shm and deleted before any run, untimed: lib/warm.sh), RAW_PORT (17001),
# UFTP_PORT (17044), IPERF_PORT (17201), TMPDIR (inputs under a temp dir, removed on exit).
# Needs: socat, uftp (loopback; apt-get install -y socat uftp); root, iproute2, iperf3, jq,
# and for the user-space netem relay ethtool and gcc (links; apt-get install -y iproute2
# iperf3 jq ethtool gcc). Missing tools skip their rows with a note. On exit every server
# is killed and the link torn down (netns.sh down).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benches/lib/warm.sh
. benches/lib/warm.sh
repo=$(pwd)

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { echo "udp.sh: $*" >&2; exit 1; }
say() { echo "udp.sh: $*" >&2; }

sections=${SECTIONS:-loopback lossy fair long}
while [ $# -gt 0 ]; do
    case $1 in
        --sections) [ $# -ge 2 ] || die "--sections needs a list"; sections=$2; shift 2 ;;
        --sections=*) sections=${1#*=}; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
sections=${sections//,/ }
for s in $sections; do
    case $s in loopback | lossy | fair | long) ;; *) die "unknown section '$s'" ;; esac
done
has() { [[ " $sections " == *" $1 "* ]]; }
net=0
if has lossy || has fair || has long; then net=1; fi

bins=${FERRY_BINS:-ferry-std ferry-mio ferry-smol}
net_bins=${NET_BINS:-ferry-std}
size_mib=${SIZE_MIB:-1024}
runs=${RUNS:-3}
net_runs=${NET_RUNS:-1}
net_secs=${NET_SECS:-10}
fair_secs=${FAIR_SECS:-20}
long_secs=${LONG_SECS:-20}
net_max_mib=${NET_MAX_MIB:-1024}
uftp_rates=${UFTP_RATES:--1 2000000}
tcp_mem_max=${TCP_MEM_MAX:-67108864}
send_timeout=${SEND_TIMEOUT:-$((120 + size_mib))}
raw_port=${RAW_PORT:-17001}
uftp_port=${UFTP_PORT:-17044}
iperf_port=${IPERF_PORT:-17201}
for v in size_mib runs net_runs net_secs fair_secs long_secs net_max_mib send_timeout \
    raw_port uftp_port iperf_port; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
[[ $tcp_mem_max =~ ^[0-9]+$ ]] || die "TCP_MEM_MAX must be a number of bytes"
for r in $uftp_rates; do [[ $r =~ ^(-1|[1-9][0-9]*)$ ]] || die "bad UFTP_RATES entry '$r'"; done

# --- temp dir, cleanup -------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-udp.XXXXXX")
netns_sh=""
link_up=0
table_done=0
cleanup() {
    local pids
    pids=$(jobs -p)
    # shellcheck disable=SC2086
    [ -z "$pids" ] || { kill $pids 2>/dev/null || true; wait $pids 2>/dev/null || true; }
    if [ "$link_up" = 1 ]; then "$netns_sh" down >/dev/null 2>&1 || say "netns.sh down failed"; fi
    if [ "$table_done" = 0 ] && [ -s "$work/table" ]; then
        echo "(interrupted: the rows measured so far)"
        print_table
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- binaries ----------------------------------------------------------------------------
if [ -n "${FERRY_BIN_DIR:-}" ]; then
    target=$FERRY_BIN_DIR
else
    say "building release binaries..."
    CARGO_INCREMENTAL=0 cargo build --release -q -p ferry-cli
    target=${CARGO_TARGET_DIR:-target}/release
fi
for bin in $bins $net_bins; do [ -x "$target/$bin" ] || die "no binary $target/$bin"; done
first_bin=${bins%% *}
"$target/$first_bin" keygen --out "$work/key" -q
# A build without the UDP command line still gives every baseline and the TCP rows.
udp_cli=1
"$target/$first_bin" send --help 2>/dev/null | grep -q -- '--udp' || udp_cli=0
[ "$udp_cli" = 1 ] || say "this build has no 'send --udp': UDP rows are skipped (baselines only)"

# --- helpers -----------------------------------------------------------------------------
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.6f\n", b - a}'; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}'; }
fmt() { awk -v r="$1" 'BEGIN {printf (r >= 100 ? "%.0f" : r >= 10 ? "%.1f" : "%.2f"), r}'; }
mbytes() { awk -v b="$1" -v s="$2" 'BEGIN {printf "%.3f", b / s / 1e6}'; }   # MB/s
mbits() { awk -v b="$1" -v s="$2" 'BEGIN {printf "%.3f", b * 8 / s / 1e6}'; } # Mbit/s

# The table is kept in $work/table (tab separated) and printed once at the end.
: > "$work/table"
failures=0
row() { # scenario tool rate unit ratio-text check note
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$(fmt "$3") $4" "$5" "$6" "$7" >> "$work/table"
    say "$(printf '%-18s %-28s %s %s  %s %s' "$1" "$2" "$(fmt "$3")" "$4" "$5" "$6")"
}
skip_row() { printf '%s\t%s\t-\t-\t-\t%s\n' "$1" "$2" "skipped: $3" >> "$work/table"; say "$1 $2 skipped: $3"; }
fail_row() {
    printf '%s\t%s\t-\t-\tFAIL\t%s\n' "$1" "$2" "transfer failed: $3" >> "$work/table"
    failures=$((failures + 1))
    say "$1 $2 FAILED: $3"
}
print_table() {
    awk -F '\t' 'BEGIN {
            printf "%-17s %-33s %12s  %-20s %-5s %s\n", "scenario", "tool", "rate", "vs base", "bound", "check / note"
        }
        { printf "%-17s %-33s %12s  %-20s %-5s %s\n", $1, $2, $3, $4, $5, $6 }' \
        "$work/table"
}

# Checks: each appends "BASE RATIOx (need >=FACTOR)" to $checks and clears $pass on a miss.
checks=""
pass=""
check_reset() { checks=""; pass=PASS; }
check_ge() { # rate factor base-rate base-name
    local r ok
    r=$(div "$1" "$3")
    ok=$(awk -v a="$1" -v f="$2" -v b="$3" 'BEGIN {print (b > 0 && a >= f * b) ? 1 : 0}')
    [ "$ok" = 1 ] || pass=FAIL
    checks="${checks:+$checks, }$4 ${r}x (need >=$2)"
}
check_abs() { # rate min unit
    local ok
    ok=$(awk -v a="$1" -v m="$2" 'BEGIN {print (a >= m) ? 1 : 0}')
    [ "$ok" = 1 ] || pass=FAIL
    checks="${checks:+$checks, }$(fmt "$1") $3 (need >=$2)"
}
check_range() { # share-percent lo hi
    local ok
    ok=$(awk -v a="$1" -v l="$2" -v h="$3" 'BEGIN {print (a >= l && a <= h) ? 1 : 0}')
    [ "$ok" = 1 ] || pass=FAIL
    checks="${checks:+$checks, }share $(fmt "$1")% (need $2-$3%)"
}

# Start `$1 serve` (inside namespace a on links) on a free port with a fresh root; sets
# srv_job and srv_addr. TCP and UDP share the port unless the build has no UDP.
run_a=()
run_b=()
host=127.0.0.1
start_server() {
    local bin=$1
    rm -rf "$work/root"
    mkdir -p "$work/root"
    : > "$work/serve.out"
    "${run_a[@]}" "$target/$bin" serve --listen "$host:0" --root "$work/root" --key "$work/key" \
        --compress off -q > "$work/serve.out" 2> "$work/serve.err" &
    srv_job=$!
    srv_addr=""
    for _ in $(seq 100); do
        srv_addr=$(sed -n 's/^listening on //p' "$work/serve.out")
        if [ -n "$srv_addr" ] || ! kill -0 "$srv_job" 2>/dev/null; then break; fi
        sleep 0.1
    done
    if [ -z "$srv_addr" ]; then
        say "$bin serve did not print 'listening on' within 10 s; stderr:"
        sed 's/^/  /' "$work/serve.err" >&2
        kill "$srv_job" 2>/dev/null || true; wait "$srv_job" 2>/dev/null || true
        srv_job=""
        return 1
    fi
}
stop_server() {
    [ -n "${srv_job:-}" ] || return 0
    kill "$srv_job" 2>/dev/null || true
    wait "$srv_job" 2>/dev/null || true
    srv_job=""
}

# --- loopback ----------------------------------------------------------------------------
# RUNS timed runs of "$@" (each prints seconds): sets T (median).
measure() {
    : > "$work/times"
    for _ in $(seq "$runs"); do
        sync # no dirty pages queued at the start (outside the timing)
        "$@" >> "$work/times" || return 1
    done
    T=$(median < "$work/times")
}

# Raw TCP with 256 KiB buffers: socat from the file into a file + fsync.
raw_once() {
    local src=$1 t0 rx rc=0
    rm -f "$work/raw.out"
    socat -b 262144 -u "TCP-LISTEN:$raw_port,reuseaddr,bind=127.0.0.1" "OPEN:$work/raw.out,creat,trunc" &
    rx=$!
    sleep 0.2
    t0=$(now)
    timeout "$send_timeout" socat -b 262144 -u "OPEN:$src" \
        "TCP:127.0.0.1:$raw_port,retry=50,interval=0.1" || rc=$?
    wait "$rx" || rc=$?
    [ "$rc" = 0 ] || { say "raw socat transfer failed ($rc)"; return 1; }
    sync "$work/raw.out"
    since "$t0"
    cmp -s "$src" "$work/raw.out" || { say "raw TCP: received data differs"; return 1; }
    rm -f "$work/raw.out"
}

# UFTP unicast with AES-256-GCM: ECDH key exchange signed by ECDSA P-256 keys on both
# sides; the sender (uftp) only admits the receiver whose key fingerprint it was given
# (-H @file with -c), the receiver (uftpd) only accepts encrypted sessions (-E).
uftp_setup() {
    local u=$work/uftp fp
    mkdir -p "$u"
    uftp_keymgt -g ec:prime256v1 "$u/send.pem" > /dev/null 2>&1 || return 1
    uftp_keymgt -g ec:prime256v1 "$u/recv.pem" > /dev/null 2>&1 || return 1
    fp=$(uftp_keymgt "$u/recv.pem" 2>&1 | sed -n 's/.*fingerprint: //p')
    [ -n "$fp" ] || return 1
    echo "0x00000002|$fp" > "$u/receivers"
}
uftp_once() { # src rate
    local src=$1 rate=$2 u=$work/uftp t0 d rc=0 name
    name=$(basename "$src")
    rm -rf "$u/dest" "$u/status"
    mkdir -p "$u/dest"
    uftpd -d -p "$uftp_port" -B 104857600 -E -D "$u/dest" -k "$u/recv.pem" -U 0x00000002 -q -x 1 \
        > "$u/uftpd.log" 2>&1 &
    d=$!
    sleep 0.3
    t0=$(now)
    timeout "$send_timeout" uftp -M 127.0.0.1 -p "$uftp_port" -U 0x00000001 -H "@$u/receivers" -c \
        -Y aes256-gcm -h sha256 -e ecdh_ecdsa -k "$u/send.pem" -R "$rate" -B 104857600 -x 1 \
        -S "$u/status" "$src" > "$u/uftp.log" 2>&1 || rc=$?
    [ "$rc" != 0 ] || sync "$u/dest/$name" 2>/dev/null || rc=99
    [ "$rc" != 0 ] || since "$t0"
    kill "$d" 2>/dev/null || true
    wait "$d" 2>/dev/null || true
    if [ "$rc" != 0 ]; then
        say "uftp -R $rate exited with status $rc:"
        tail -n 5 "$u/uftp.log" | sed 's/^/  /' >&2
        return 1
    fi
    cmp -s "$src" "$u/dest/$name" || { say "uftp: received file differs"; return 1; }
    rm -rf "$u/dest"
}

# One timed `send` of a file over 127.0.0.1 (extra flags: --udp); prints seconds.
ferry_once() { # bin path flags...
    local bin=$1 path=$2 t0 rc=0
    shift 2
    rm -f "$work/root/$(basename "$path")"
    t0=$(now)
    timeout "$send_timeout" "$target/$bin" send "$path" --to "$srv_addr" --key "$work/key" \
        --compress off -q --json "$@" > "$work/send.json" 2> "$work/send.err" || rc=$?
    if [ "$rc" != 0 ]; then
        say "$bin send $* exited with status $rc$([ "$rc" = 124 ] && echo " (no exit after ${send_timeout}s)")"
        sed 's/^/  /' "$work/send.err" >&2
        return 1
    fi
    since "$t0"
    cmp -s "$path" "$work/root/$(basename "$path")" || { say "$bin $*: received file differs"; return 1; }
    used_udp "$work/send.json" "$@"
}

# With --udp among the flags, the client's --json line must say it went over UDP.
used_udp() { # json-file flags...
    local f=$1
    shift
    [[ " $* " == *" --udp "* ]] || return 0
    grep -q '"transport":"udp"' "$f" && return 0
    say "--udp given but the client's JSON does not say \"transport\":\"udp\": $(head -c 300 "$f")"
    return 1
}

loopback_section() {
    local sc="loopback ${size_mib}MiB" src=$work/in/random.bin bytes raw="" uftp="" best_rate="" rate tcp
    bytes=$((size_mib << 20))
    if command -v socat >/dev/null; then
        if measure raw_once "$src"; then
            raw=$(mbytes "$bytes" "$T")
            row "$sc" "raw TCP (socat)" "$raw" MB/s "1.00 x raw-tcp" "" "BASELINE: file + fsync at the receiver"
        else
            fail_row "$sc" "raw TCP (socat)" "see stderr"
        fi
    else
        skip_row "$sc" "raw TCP (socat)" "socat not installed (apt-get install -y socat)"
    fi
    if command -v uftp >/dev/null && command -v uftpd >/dev/null && command -v uftp_keymgt >/dev/null; then
        if uftp_setup; then
            for r in $uftp_rates; do
                if measure uftp_once "$src" "$r"; then
                    rate=$(mbytes "$bytes" "$T")
                    row "$sc" "uftp aes256-gcm -R $r" "$rate" MB/s "${raw:+$(div "$rate" "$raw") x raw-tcp}" "" \
                        "ECDH(P-256)+ECDSA, unicast, + fsync"
                    if [ -z "$best_rate" ] || awk -v a="$rate" -v b="$best_rate" 'BEGIN {exit !(a > b)}'; then
                        best_rate=$rate
                        uftp="-R $r"
                    fi
                else
                    fail_row "$sc" "uftp aes256-gcm -R $r" "see stderr"
                fi
            done
            [ -z "$uftp" ] || echo "loopback: the uftp baseline is the fastest uftp row ($uftp)" >> "$work/notes"
        else
            skip_row "$sc" "uftp" "uftp_keymgt could not make keys"
        fi
    else
        skip_row "$sc" "uftp" "uftp not installed (apt-get install -y uftp)"
    fi
    for bin in $bins; do
        if ! start_server "$bin"; then fail_row "$sc" "$bin" "server did not start"; continue; fi
        tcp=""
        if measure ferry_once "$bin" "$src"; then
            tcp=$(mbytes "$bytes" "$T")
            row "$sc" "$bin tcp" "$tcp" MB/s "${raw:+$(div "$tcp" "$raw") x raw-tcp}" "" "--compress off"
        else
            fail_row "$sc" "$bin tcp" "see stderr"
        fi
        if [ "$udp_cli" = 0 ]; then
            skip_row "$sc" "$bin udp" "no --udp in this build"
        elif measure ferry_once "$bin" "$src" --udp; then
            rate=$(mbytes "$bytes" "$T")
            check_reset
            if [ -n "$best_rate" ]; then check_ge "$rate" 2 "$best_rate" "uftp"; else pass=FAIL; checks="no uftp baseline"; fi
            if [ -n "$tcp" ]; then check_ge "$rate" 0.6 "$tcp" "$bin-tcp"; else pass=FAIL; checks="$checks, no tcp baseline"; fi
            row "$sc" "$bin udp" "$rate" MB/s "${best_rate:+$(div "$rate" "$best_rate") x uftp}" "$pass" "$checks"
        else
            fail_row "$sc" "$bin udp" "see stderr"
        fi
        stop_server
    done
}

# --- links (netns.sh) --------------------------------------------------------------------
ns_cc=""
net_note=""
link() { # delay loss [rate]
    stop_server
    say "netns.sh up $*"
    link_up=1
    "$netns_sh" up "$@" > "$work/netns.log" 2>&1 || { cat "$work/netns.log" >&2; die "netns.sh up $* failed"; }
    if [ "$tcp_mem_max" != 0 ]; then
        for side in a b; do
            "$netns_sh" "$side" sysctl -qw net.ipv4.tcp_rmem="4096 131072 $tcp_mem_max" \
                net.ipv4.tcp_wmem="4096 16384 $tcp_mem_max" || die "could not raise the TCP buffers in $side"
        done
    fi
    ns_cc=$("$netns_sh" a sysctl -n net.ipv4.tcp_congestion_control)
    net_note="namespaces: tcp cc $ns_cc, tcp_rmem/wmem max $("$netns_sh" a sysctl -n net.ipv4.tcp_wmem | awk '{print $3}'),"
    net_note+=" net.core.rmem_max $("$netns_sh" a sysctl -n net.core.rmem_max) wmem_max $("$netns_sh" a sysctl -n net.core.wmem_max),"
    net_note+=" netem backend $(sed -n 's/^mode=\([a-z]*\).*/\1/p' "/run/$FERRY_NS_PREFIX-netns/config" 2>/dev/null || echo '?')"
    echo "$net_note" >> "$work/notes"
}

# One time-bounded ferry flow from namespace b; prints "BYTES SECONDS" after checking that
# the received file is the input's prefix (and removing it).
ferry_flow() { # bin name secs flags...
    local bin=$1 name=$2 secs=$3 t0 rc n
    shift 3
    rm -f "$work/root/$name"
    t0=$(now)
    set +e
    timeout "$secs" head -c "$((net_max_mib << 20))" "$stream" 2>/dev/null |
        "${run_b[@]}" timeout "$((secs + 120))" "$target/$bin" send - --as "$name" --to "$srv_addr" \
            --key "$work/key" --compress off -q --json "$@" > "$work/$name.json" 2> "$work/$name.err"
    rc=${PIPESTATUS[1]}
    set -e
    if [ "$rc" != 0 ]; then
        say "$bin send - $* exited with status $rc$([ "$rc" = 124 ] && echo " (no exit $((secs + 120))s after the start)")"
        sed 's/^/  /' "$work/$name.err" >&2
        return 1
    fi
    local s
    s=$(since "$t0")
    n=$(stat -c %s "$work/root/$name" 2>/dev/null || echo 0)
    if [ "$n" = 0 ] || ! cmp -s -n "$n" "$stream" "$work/root/$name"; then
        say "$bin $*: received $n bytes that are not the input's prefix"
        return 1
    fi
    rm -f "$work/root/$name"
    used_udp "$work/$name.json" "$@" || return 1
    echo "$n $s"
}

# One iperf3 TCP flow b -> a for SECS with congestion control CC; prints "BYTES SECONDS"
# (the receiver's figures).
iperf_flow() { # cc secs port
    local cc=$1 secs=$2 port=$3 s rc=0
    "${run_a[@]}" timeout "$((secs + 60))" iperf3 -s -1 -B "$host" -p "$port" > /dev/null 2>&1 &
    s=$!
    sleep 1
    "${run_b[@]}" timeout "$((secs + 60))" iperf3 -c "$host" -p "$port" -t "$secs" -C "$cc" -J \
        > "$work/iperf.$port.json" 2>&1 || rc=$?
    wait "$s" 2>/dev/null || true
    if [ "$rc" != 0 ]; then
        say "iperf3 -C $cc exited with status $rc: $(jq -r '.error // empty' "$work/iperf.$port.json" 2>/dev/null)"
        return 1
    fi
    jq -r '.end.sum_received | "\(.bytes) \(.seconds)"' "$work/iperf.$port.json"
}

# NET_RUNS runs of a flow command: sets R (median Mbit/s).
net_measure() {
    local out
    : > "$work/rates"
    for _ in $(seq "$net_runs"); do
        out=$("$@") || return 1
        # shellcheck disable=SC2086
        mbits $out >> "$work/rates"
        echo >> "$work/rates"
    done
    R=$(median < "$work/rates")
}

# The rows of one link: iperf3 cubic and bbr, then per binary ferry tcp, udp cubic, udp bbr.
# KIND picks the bounds: zero, loss1, loss5, long.
link_rows() { # scenario kind secs
    local sc=$1 kind=$2 secs=$3 cubic="" bbr="" base rate cc
    for cc in cubic bbr; do
        if net_measure iperf_flow "$cc" "$secs" "$iperf_port"; then
            printf -v "$cc" %s "$R"
            row "$sc" "iperf3 tcp -C $cc" "$R" Mbit/s "BASELINE" "" "${secs}s"
        else
            fail_row "$sc" "iperf3 tcp -C $cc" "see stderr"
        fi
    done
    base=$cubic
    [ "$ns_cc" != bbr ] || base=$bbr
    for bin in $net_bins; do
        if ! start_server "$bin"; then fail_row "$sc" "$bin" "server did not start"; continue; fi
        if net_measure ferry_flow "$bin" tcp.bin "$secs"; then
            row "$sc" "$bin tcp ($ns_cc)" "$R" Mbit/s "${base:+$(div "$R" "$base") x iperf3-$ns_cc}" "" "${secs}s"
        else
            fail_row "$sc" "$bin tcp" "see stderr"
        fi
        for cc in cubic bbr; do
            if [ "$udp_cli" = 0 ]; then skip_row "$sc" "$bin udp --cc $cc" "no --udp in this build"; continue; fi
            if ! net_measure ferry_flow "$bin" "udp-$cc.bin" "$secs" --udp --cc "$cc"; then
                fail_row "$sc" "$bin udp --cc $cc" "see stderr"
                continue
            fi
            rate=$R
            check_reset
            case $kind-$cc in
                zero-*) check_ge "$rate" 0.5 "$base" "iperf3-$ns_cc" ;;
                loss1-cubic | loss5-cubic) check_ge "$rate" 1.0 "$cubic" iperf3-cubic ;;
                loss1-bbr) check_ge "$rate" 0.8 "$bbr" iperf3-bbr; check_ge "$rate" 20 "$cubic" iperf3-cubic ;;
                loss5-bbr) check_ge "$rate" 0.5 "$bbr" iperf3-bbr ;;
                long-bbr) check_abs "$rate" 300 Mbit/s ;;
                *) pass="-" ;;
            esac
            local ref=$cubic refname=iperf3-cubic
            [ "$cc" != bbr ] || { ref=$bbr; refname=iperf3-bbr; }
            row "$sc" "$bin udp --cc $cc" "$rate" Mbit/s "${ref:+$(div "$rate" "$ref") x $refname}" "$pass" "$checks"
        done
        stop_server
    done
}

# A router-like bottleneck for the fair rows: on a link without RATE, namespace a's ingress
# is redirected through an ifb device whose egress holds the same tbf netns.sh puts on each
# endpoint (RATE, burst 64kb, latency 100ms). The sender's own egress then has no queue: with
# netns.sh's tbf on the sender's egress, kernel TCP's small-queue limit (TSQ: about 1 ms of
# its pacing rate may wait in the local qdisc) leaves it a few packets of that shared FIFO
# while a UDP sender fills it, which measures the host's stack, not congestion control.
router_bottleneck() { # rate
    "$netns_sh" a ip link add ifb0 type ifb &&
        "$netns_sh" a ip link set ifb0 up &&
        "$netns_sh" a tc qdisc add dev fa0 ingress &&
        "$netns_sh" a tc filter add dev fa0 parent ffff: protocol all u32 match u32 0 0 \
            action mirred egress redirect dev ifb0 &&
        "$netns_sh" a tc qdisc add dev ifb0 root tbf rate "$1" burst 64kb latency 100ms
}

# Two flows through the bottleneck: two ferry UDP flows at once, then ferry (default
# controller) beside one iperf3 CUBIC flow in each order, then two iperf3 CUBIC flows. Each
# flow's share = its rate / the sum. BOUND (1/0): check the issue's share bounds or only print the shares.
fair_rows() { # scenario secs bound
    local sc=$1 secs=$2 bound=$3 bin=${net_bins%% *} p1 p2 o1 o2 r1 r2 total
    if [ "$udp_cli" = 0 ]; then skip_row "$sc" "2 x $bin udp" "no --udp in this build"; return 0; fi
    start_server "$bin" || { fail_row "$sc" "$bin" "server did not start"; return 0; }
    ferry_flow "$bin" f1.bin "$secs" --udp > "$work/f1" &
    p1=$!
    ferry_flow "$bin" f2.bin "$secs" --udp > "$work/f2" &
    p2=$!
    if wait "$p1" && wait "$p2"; then
        # shellcheck disable=SC2046
        r1=$(mbits $(cat "$work/f1"))
        # shellcheck disable=SC2046
        r2=$(mbits $(cat "$work/f2"))
        total=$(awk -v a="$r1" -v b="$r2" 'BEGIN {print a + b}')
        for i in 1 2; do
            local r=$r1
            [ "$i" = 1 ] || r=$r2
            check_reset
            check_range "$(awk -v a="$r" -v t="$total" 'BEGIN {print 100 * a / t}')" 40 60
            [ "$bound" = 1 ] || pass="-"
            row "$sc" "$bin udp flow $i of 2" "$r" Mbit/s "$(div "$r" "$total") of sum" "$pass" "$checks"
        done
    else
        wait "$p2" 2>/dev/null || true
        fail_row "$sc" "2 x $bin udp" "see stderr"
    fi
    # ferry (default controller) beside iperf3 CUBIC, each order once: the flow that starts
    # first fills the deep queue in slow start and CUBIC takes far longer than FAIR_SECS to
    # even the windows out, so the bound applies to the mean of the two orders. Two iperf3
    # CUBIC flows started the same way give the kernel's own figure beside it.
    local lead_pct=() i share sum=0
    for first in iperf ferry; do
        if [ "$first" = iperf ]; then
            # iperf_flow's client (and its data about 0.1 s later) starts 1 s after the call
            iperf_flow cubic "$secs" "$iperf_port" > "$work/i1" &
            p1=$!
            sleep 2.1
            ferry_flow "$bin" f3.bin "$secs" --udp > "$work/f3" &
            p2=$!
        else
            ferry_flow "$bin" f3.bin "$secs" --udp > "$work/f3" &
            p2=$!
            iperf_flow cubic "$secs" "$iperf_port" > "$work/i1" &
            p1=$!
        fi
        o1=0 o2=0
        wait "$p1" || o1=1
        wait "$p2" || o2=1
        if [ "$o1" != 0 ] || [ "$o2" != 0 ]; then
            fail_row "$sc" "$bin udp beside iperf3 cubic ($first first)" "see stderr"
            continue
        fi
        # shellcheck disable=SC2046
        r1=$(mbits $(cat "$work/f3"))
        # shellcheck disable=SC2046
        r2=$(mbits $(cat "$work/i1"))
        total=$(awk -v a="$r1" -v b="$r2" 'BEGIN {print a + b}')
        share=$(awk -v a="$r1" -v t="$total" 'BEGIN {print 100 * a / t}')
        lead_pct+=("$share")
        row "$sc" "$bin udp beside iperf3 ($first 1st)" "$r1" Mbit/s "$(div "$r1" "$total") of sum" "" ""
        row "$sc" "iperf3 cubic beside ferry" "$r2" Mbit/s "$(div "$r2" "$total") of sum" "" ""
    done
    if [ "${#lead_pct[@]}" = 2 ]; then
        for i in "${lead_pct[@]}"; do sum=$(awk -v a="$sum" -v b="$i" 'BEGIN {print a + b}'); done
        share=$(awk -v a="$sum" 'BEGIN {print a / 2}')
        check_reset
        check_range "$share" 35 65
        [ "$bound" = 1 ] || pass="-"
        row "$sc" "$bin udp beside iperf3, mean" "$share" "%" "of both orders" "$pass" "$checks"
    fi
    iperf_flow cubic "$secs" "$iperf_port" > "$work/i1" &
    p1=$!
    sleep 1
    iperf_flow cubic "$secs" "$((iperf_port + 1))" > "$work/i2" &
    p2=$!
    o1=0 o2=0
    wait "$p1" || o1=1
    wait "$p2" || o2=1
    if [ "$o1" = 0 ] && [ "$o2" = 0 ]; then
        # shellcheck disable=SC2046
        r1=$(mbits $(cat "$work/i1"))
        # shellcheck disable=SC2046
        r2=$(mbits $(cat "$work/i2"))
        total=$(awk -v a="$r1" -v b="$r2" 'BEGIN {print a + b}')
        row "$sc" "iperf3 cubic, 1st of 2" "$r1" Mbit/s "$(div "$r1" "$total") of sum" "" "kernel reference"
        row "$sc" "iperf3 cubic, 2nd of 2" "$r2" Mbit/s "$(div "$r2" "$total") of sum" "" "kernel reference"
    else
        fail_row "$sc" "2 x iperf3 cubic" "see stderr"
    fi
    stop_server
}

# --- preflight, inputs -------------------------------------------------------------------
: > "$work/notes"
if [ "$net" = 1 ]; then
    if [ -z "${NETNS_SH:-}" ]; then
        for c in "$repo/../shared/tools/netns.sh" "$repo/../../shared/tools/netns.sh"; do
            if [ -f "$c" ]; then netns_sh=$c; break; fi
        done
    else
        netns_sh=$NETNS_SH
    fi
    why=""
    [ -n "$netns_sh" ] && [ -f "$netns_sh" ] || why="netns.sh not found (set NETNS_SH)"
    [ -n "$why" ] || [ "$(id -u)" = 0 ] || why="links need root (network namespaces)"
    for c in iperf3 jq ip; do
        [ -n "$why" ] || command -v "$c" >/dev/null || why="$c not installed (apt-get install -y iperf3 jq iproute2)"
    done
    if [ -n "$why" ]; then
        for s in lossy fair long; do has "$s" && skip_row "$s" "all rows" "$why"; done
        net=0
    else
        export FERRY_NS_PREFIX=${FERRY_NS_PREFIX:-ferry-ubench}
    fi
fi
mkdir -p "$work/in"
# An untimed write and delete first, so a new VM's first-touch cost is not in any row (lib/warm.sh).
warm_memory "$((2 * (size_mib > net_max_mib ? size_mib : net_max_mib)))"
if has loopback; then
    say "generating $size_mib MiB random..."
    head -c "$((size_mib << 20))" /dev/urandom > "$work/in/random.bin"
fi
stream=$work/in/random.bin
if [ "$net" = 1 ] && { ! has loopback || [ "$size_mib" -lt "$net_max_mib" ]; }; then
    say "generating the $net_max_mib MiB link input..."
    stream=$work/in/stream.bin
    head -c "$((net_max_mib << 20))" /dev/urandom > "$stream"
fi

# --- run ---------------------------------------------------------------------------------
started=$(date -u +%H:%M:%S)
load0=$(cut -d' ' -f1-3 /proc/loadavg)
if has loopback; then loopback_section; fi
if [ "$net" = 1 ]; then
    # from here on servers run in namespace a, clients in b
    run_a=("$netns_sh" a)
    run_b=("$netns_sh" b)
    host=10.77.0.1
    if has lossy; then
        link 10ms 0% && link_rows "20ms 0%" zero "$net_secs"
        link 10ms 1% && link_rows "20ms 1%" loss1 "$net_secs"
        link 10ms 5% && link_rows "20ms 5%" loss5 "$net_secs"
    fi
    if has fair; then
        link 10ms 0% 100mbit && link_rows "20ms 0% 100mbit" zero "$net_secs"
        [ -z "${FAIR_HOST_QDISC:-}" ] || fair_rows "fair host-qdisc" "$fair_secs" 0
        link 10ms 0%
        if router_bottleneck 100mbit; then
            fair_rows "fair 100mbit" "$fair_secs" 1
        else
            skip_row "fair 100mbit" "all rows" "no ifb/u32/mirred for a router bottleneck"
        fi
    fi
    if has long; then
        link 100ms 2% 500mbit && link_rows "200ms 2% 500mbit" long "$long_secs"
    fi
    stop_server
    "$netns_sh" down > /dev/null 2>&1 || say "netns.sh down failed"
    link_up=0
fi

echo "ferry udp.sh $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')" \
    "(binaries: $target, $("$target/$first_bin" --version 2>/dev/null || echo '?')): sections $sections; $(nproc) cpus;" \
    "started $started UTC, load at start $load0, at end $(cut -d' ' -f1-3 /proc/loadavg)"
if has loopback; then echo "loopback: ${size_mib} MiB random, median of $runs run(s), rates in MB/s (10^6 B/s)"; fi
if [ "$net" = 1 ]; then
    echo "links: netns.sh (10.77.0.2 -> 10.77.0.1), median of $net_runs run(s) of ${net_secs}s" \
        "(fair ${fair_secs}s, long ${long_secs}s) capped at $net_max_mib MiB, rates in Mbit/s"
fi
sort -u "$work/notes"
print_table
table_done=1
[ "$failures" = 0 ] || die "$failures row(s) failed (details above)"
