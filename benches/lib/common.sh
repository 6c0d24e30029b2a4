# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034 # globals shared with benches/e2e.sh, which sources this
# Helpers of benches/e2e.sh (sourced): arithmetic, CPU accounting, measuring, the table,
# installing missing tools. Uses the caller's globals: work, runs, gnu_time, base_cmd.

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.6f\n", b - a}'; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]}'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN {printf "%.0f MB/s", b / s / 1e6}'; }
fps() { awk -v n="$1" -v s="$2" 'BEGIN {printf "%.0f files/s", n / s}'; }
mib() { if [ -n "$1" ]; then awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; else echo -; fi; }
# CPU seconds per 10^9 bytes moved ("-" when the CPU time is unknown)
per_gb() { if [ -n "$1" ]; then awk -v c="$1" -v b="$2" 'BEGIN {printf "%.2f", c / (b / 1e9)}'; else echo -; fi; }

# --- CPU accounting ------------------------------------------------------------------------
# Run a one-shot command under GNU time, which writes "user sys maxrss-KiB" to FILE (time
# counts every process the command waits for: timeout, sh -c pipelines, netns exec).
timed() { # FILE command...
    local f=$1
    shift
    rm -f "$f"
    if [ -n "$gnu_time" ]; then "$gnu_time" -f '%U %S %M' -o "$f" "$@"; else "$@"; fi
}
# Sum of user+sys seconds over the files `timed` wrote, plus extra seconds (e.g. a server's
# /proc delta); empty when GNU time is missing.
cpu_sum() { # extra-seconds file...
    local extra=$1
    shift
    [ -n "$gnu_time" ] || return 0
    for f in "$@"; do [ -f "$f" ] && tail -n 1 "$f"; done |
        awk -v x="$extra" '{s += $1 + $2} END {printf "%.3f\n", s + x}'
}
rss_of() { [ -z "$gnu_time" ] || [ ! -f "$1" ] || tail -n 1 "$1" | awk '{print $3}'; }
# user+sys seconds of a long-running process so far, including the children it has reaped
# (sshd's per-connection processes): fields 14-17 of /proc/PID/stat.
proc_cpu() {
    awk -v tck="$clk_tck" '{sub(/^.*\) /, ""); printf "%.3f\n", ($12 + $13 + $14 + $15) / tck}' \
        "/proc/$1/stat" 2>/dev/null || echo 0
}
# Wait (5 s at most) until PID has reaped all its children, so proc_cpu counts them.
wait_reaped() {
    for _ in $(seq 50); do
        [ -n "$(cat "/proc/$1/task/"*/children 2>/dev/null)" ] || return 0
        sleep 0.1
    done
}
clk_tck=$(getconf CLK_TCK 2>/dev/null || echo 100)

# --- measuring ------------------------------------------------------------------------------
# Every *_once function sets o_t (seconds), o_cpu (CPU seconds, both ends; "" if unknown) and
# o_rss (client peak KiB or "") and returns non-zero on failure.
_collect() { # start a measurement
    : > "$work/m.times"
    : > "$work/m.cpu"
    : > "$work/m.rss"
    : > "$work/m.ratio"
}
_record() {
    echo "$o_t" >> "$work/m.times"
    [ -z "$o_cpu" ] || echo "$o_cpu" >> "$work/m.cpu"
    [ -z "$o_rss" ] || echo "$o_rss" >> "$work/m.rss"
}
# Sets T (median seconds), CPU (median CPU seconds, "" if unknown), CLI_RSS (max KiB or "")
# and RATIO (median of the paired ratios, "" if unpaired).
_summarize() {
    T=$(median < "$work/m.times")
    CPU=""
    [ "$(wc -l < "$work/m.cpu")" != "$(wc -l < "$work/m.times")" ] || CPU=$(median < "$work/m.cpu")
    CLI_RSS=$(sort -n "$work/m.rss" | tail -n 1)
    RATIO=$(median < "$work/m.ratio")
}
# RUNS runs of one command, nothing paired (the baselines themselves).
measure() {
    _collect
    for _ in $(seq "$runs"); do
        sync # start each run with no dirty pages queued (outside the timing)
        "$@" || return 1
        _record
    done
    _summarize
}
# RUNS pairs: a baseline run (the command in the base_cmd array: raw TCP, or tar over raw TCP
# for small files) immediately followed by a run of the command; the pair's ratio is
# baseline seconds / row seconds (row throughput relative to raw TCP). RATIO is their median.
measure_paired() {
    local b
    _collect
    for _ in $(seq "$runs"); do
        sync
        "${base_cmd[@]}" || { echo "e2e.sh: the paired raw TCP run failed" >&2; return 1; }
        b=$o_t
        sync
        "$@" || return 1
        _record
        div "$b" "$o_t" >> "$work/m.ratio"
        echo >> "$work/m.ratio"
    done
    _summarize
}

# --- the table -----------------------------------------------------------------------------
line() { printf '%-7s %-18s %8s %14s %6s %8s %7s %7s  %s\n' "$@"; }
header() { line section transfer seconds rate "x raw" "cpu s/GB" "srv MiB" "cli MiB" note; }
# Print the row of the last measurement. UNITS (bytes|files), AMOUNT and BYTES (for CPU/GB)
# come from the section's globals sec_units, sec_amount, sec_bytes.
print_row() { # label ratio-or-empty srv-KiB note
    local rate ratio=${2:-${RATIO:-}}
    if [ "$sec_units" = files ]; then rate=$(fps "$sec_amount" "$T"); else rate=$(mbps "$sec_amount" "$T"); fi
    line "$sec" "$1" "$(awk -v s="$T" 'BEGIN {printf "%.3f", s}')" "$rate" "${ratio:--}" \
        "$(per_gb "$CPU" "$sec_bytes")" "$(mib "$3")" "$(mib "$CLI_RSS")" "$4"
}
skip_row() { line "$sec" "$1" - - - - - - "$2"; }
fail_row() { line "$sec" "$1" - - - - - - "FAILED: $2"; failures=$((failures + 1)); }

# --- installing what is missing --------------------------------------------------------------
# Install the Debian/Ubuntu packages of missing commands with apt-get (as root, or sudo -n),
# unless INSTALL=0. Whatever stays missing is skipped later with a note.
ensure_tools() {
    local pkgs=() sudo=()
    command -v socat >/dev/null || pkgs+=(socat)
    command -v openssl >/dev/null || pkgs+=(openssl)
    command -v rsync >/dev/null || pkgs+=(rsync)
    command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || pkgs+=(openssh-server)
    for c in ssh scp sftp ssh-keygen; do
        command -v "$c" >/dev/null || { pkgs+=(openssh-client); break; }
    done
    [ -n "$gnu_time" ] || pkgs+=(time)
    [ ${#pkgs[@]} -gt 0 ] || return 0
    if [ "${INSTALL:-1}" = 0 ] || ! command -v apt-get >/dev/null; then
        echo "e2e.sh: missing packages (not installing): ${pkgs[*]}" >&2
        return 0
    fi
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo=(sudo -n); else
            echo "e2e.sh: missing packages, not root and no sudo -n: ${pkgs[*]}" >&2
            return 0
        fi
    fi
    echo "installing ${pkgs[*]} (apt-get)..." >&2
    # RUNLEVEL=1: the packages' scripts do not start a system sshd on port 22
    local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get -y -q)
    "${apt[@]}" install --no-install-recommends "${pkgs[@]}" > "$work/apt.log" 2>&1 ||
        { "${apt[@]}" update > "$work/apt.log" 2>&1 &&
            "${apt[@]}" install --no-install-recommends "${pkgs[@]}" >> "$work/apt.log" 2>&1; } ||
        { echo "e2e.sh: apt-get install ${pkgs[*]} failed:" >&2; tail -n 5 "$work/apt.log" >&2; }
}
find_gnu_time() {
    gnu_time=""
    if [ -x /usr/bin/time ] && /usr/bin/time -f %M -o /dev/null true 2>/dev/null; then
        gnu_time=/usr/bin/time
    fi
}
