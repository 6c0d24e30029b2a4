# shellcheck shell=bash
# warm_memory MIB: write MIB MiB to tmpfs once and delete it, untimed, before any run.
#
# On a freshly booted VM the first write to a guest page that was never used costs far more
# than later writes (the host backs it on first touch). Measured here on a new machine:
# `dd if=/dev/zero of=/dev/shm/x bs=64k count=16384` took 2.88 s of system time the first
# time and 0.40 s the second. Without a warm-up that cost lands on whichever rows write
# their output first (a receiver's page cache), not on the tool being measured. Pages freed
# here are the ones the runs get back first. WARM_MIB=0 skips it; WARM_DIR picks the place
# (/dev/shm: no disk I/O).
warm_memory() {
    local mib=${WARM_MIB:-$1} dir=${WARM_DIR:-/dev/shm} avail f
    [ "$mib" -gt 0 ] 2>/dev/null && [ -d "$dir" ] && [ -w "$dir" ] || return 0
    # Never more than half of what the machine has free.
    avail=$(awk '/^MemAvailable:/ {print int($2 / 2048)}' /proc/meminfo 2>/dev/null || echo 0)
    [ "$avail" -gt 0 ] && [ "$mib" -gt "$avail" ] && mib=$avail
    f=$(mktemp "$dir/ferry-warm.XXXXXX") || return 0
    dd if=/dev/zero of="$f" bs=1M count="$mib" status=none 2>/dev/null || true
    rm -f "$f"
}
