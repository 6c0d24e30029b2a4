# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034 # globals shared with benches/e2e.sh, which sources this
# Transfers of benches/e2e.sh (sourced): the ferry server, socat raw TCP / TLS, the private
# sshd with scp, sftp and rsync. Each *_once sets o_t, o_cpu, o_rss (see lib/common.sh).
# Uses the caller's globals: work, target, host, run_a, run_b, raw_port, ssh_port,
# send_timeout.

# --- ferry --------------------------------------------------------------------------------
# Start `$1 serve` (in namespace a with --link) on a free port, fresh root.
# Sets srv_job (for kill/wait), srv_pid (the ferry process: VmHWM, CPU), srv_addr.
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

# One timed `send` to the running server. CPU: the client under GNU time + the server's
# utime+stime delta from /proc.
ferry_once() { # bin path compress
    local bin=$1 path=$2 mode=$3 t0 c0 c1 rc=0
    rm -rf "${work:?}/root/$(basename "$path")"
    c0=$(proc_cpu "$srv_pid")
    t0=$(now)
    timed "$work/t.tx" "${run_b[@]}" timeout "$send_timeout" "$target/$bin" send "$path" \
        --to "$srv_addr" --key "$work/key" --compress "$mode" -q 2> "$work/send.err" || rc=$?
    o_t=$(since "$t0")
    if [ "$rc" != 0 ]; then
        if [ "$rc" = 124 ]; then
            echo "e2e.sh: $bin send $path --compress $mode: no exit after ${send_timeout}s (hang?), killed" >&2
        else
            echo "e2e.sh: $bin send $path --compress $mode exited with status $rc" >&2
        fi
        sed 's/^/  /' "$work/send.err" >&2
        return 1
    fi
    c1=$(proc_cpu "$srv_pid")
    o_cpu=$(cpu_sum "$(awk -v a="$c0" -v b="$c1" 'BEGIN {print b - a}')" "$work/t.tx")
    o_rss=$(rss_of "$work/t.tx")
}

# --- socat: raw TCP and TLS 1.3 ------------------------------------------------------------
# Throwaway self-signed certificate and an OpenSSL config that allows only TLS 1.3 with
# TLS_AES_256_GCM_SHA384 (socat 1.7 has no option for TLS 1.3 ciphersuites; OpenSSL >= 1.1.1
# reads OPENSSL_CONF). Checks the negotiated suite with s_client; prints why not on failure.
tls_setup() {
    tls_dir=$work/tls
    mkdir -p "$tls_dir"
    command -v openssl >/dev/null || { echo "openssl not installed (apt-get install openssl)"; return 1; }
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
        -keyout "$tls_dir/key.pem" -out "$tls_dir/cert.pem" 2> "$tls_dir/req.err" ||
        { echo "openssl req failed: $(head -c 200 "$tls_dir/req.err")"; return 1; }
    cat > "$tls_dir/openssl.cnf" <<'EOF'
openssl_conf = ferry_e2e
[ferry_e2e]
ssl_conf = ferry_e2e_ssl
[ferry_e2e_ssl]
system_default = ferry_e2e_tls
[ferry_e2e_tls]
MinProtocol = TLSv1.3
MaxProtocol = TLSv1.3
Ciphersuites = TLS_AES_256_GCM_SHA384
EOF
    tls_env=(env "OPENSSL_CONF=$tls_dir/openssl.cnf")
    "${run_a[@]}" "${tls_env[@]}" timeout 10 socat -u "$(tls_listen)" /dev/null 2>/dev/null &
    local rx=$! out
    sleep 0.3
    out=$("${run_b[@]}" "${tls_env[@]}" timeout 10 openssl s_client -connect "$host:$raw_port" -brief < /dev/null 2>&1 || true)
    wait "$rx" 2>/dev/null || true
    if ! grep -q 'Protocol version: TLSv1.3' <<< "$out" ||
        ! grep -q 'Ciphersuite: TLS_AES_256_GCM_SHA384' <<< "$out"; then
        echo "socat did not negotiate TLS 1.3 AES-256-GCM: $(tr '\n' ' ' <<< "$out" | head -c 300)"
        return 1
    fi
}
tls_listen() {
    echo "OPENSSL-LISTEN:$raw_port,reuseaddr,bind=$host,cert=$tls_dir/cert.pem,key=$tls_dir/key.pem,verify=0"
}

# One socat transfer, 256 KiB buffers. PROTO tcp|tls; KIND file (SRC file into DEST, a file
# fsynced after, or /dev/null) or tar (tar c SRC | socat -> socat | tar x -C DEST, then fsync
# of every file and directory received). CPU: both socat ends (+ tar) and the fsync.
sock_once() { # proto kind src dest
    local proto=$1 kind=$2 src=$3 dest=$4 listen connect t0 rx rc=0 env=()
    if [ "$proto" = tls ]; then
        listen=$(tls_listen)
        connect="OPENSSL:$host:$raw_port,verify=0,retry=50,interval=0.1"
        env=("${tls_env[@]}")
    else
        listen="TCP-LISTEN:$raw_port,reuseaddr,bind=$host"
        connect="TCP:$host:$raw_port,retry=50,interval=0.1"
    fi
    rm -f "$work/t.sync"
    if [ "$kind" = file ]; then
        [ "$dest" = /dev/null ] || rm -f "$dest"
        timed "$work/t.rx" "${run_a[@]}" "${env[@]}" timeout "$send_timeout" \
            socat -b 262144 -u "$listen" "OPEN:$dest,creat,trunc" &
    else
        rm -rf "$dest"
        mkdir -p "$dest"
        # shellcheck disable=SC2016 # $1, $2 expand in the inner sh
        timed "$work/t.rx" "${run_a[@]}" "${env[@]}" timeout "$send_timeout" \
            sh -c 'socat -b 262144 -u "$1" STDOUT | tar x -C "$2"' sh "$listen" "$dest" &
    fi
    rx=$!
    sleep 0.2
    t0=$(now)
    if [ "$kind" = file ]; then
        timed "$work/t.tx" "${run_b[@]}" "${env[@]}" timeout "$send_timeout" \
            socat -b 262144 -u "OPEN:$src" "$connect" || rc=$?
    else
        # shellcheck disable=SC2016 # $1..$3 expand in the inner sh
        timed "$work/t.tx" "${run_b[@]}" "${env[@]}" timeout "$send_timeout" \
            sh -c 'tar c -C "$1" "$2" | socat -b 262144 -u STDIN "$3"' sh \
            "$(dirname "$src")" "$(basename "$src")" "$connect" || rc=$?
    fi
    wait "$rx" || rc=$?
    [ "$rc" = 0 ] || { echo "e2e.sh: socat $proto $kind transfer failed ($rc)" >&2; return 1; }
    if [ "$kind" = tar ]; then
        timed "$work/t.sync" find "$dest" -exec sync {} +
    elif [ "$dest" != /dev/null ]; then
        timed "$work/t.sync" sync "$dest"
    fi
    o_t=$(since "$t0")
    o_cpu=$(cpu_sum 0 "$work/t.rx" "$work/t.tx" "$work/t.sync")
    o_rss=$(rss_of "$work/t.tx")
}

# --- the private sshd: scp, sftp, rsync ----------------------------------------------------
# One transfer of SRC (file or directory) into $work/ssh/dest/ by TOOL (scp|sftp|rsync),
# then fsync of everything received, inside the timing. CPU: the client under GNU time + the
# sshd listener's CPU delta including its reaped per-connection children (sshd, the
# sftp-server or rsync it runs).
ssh_once() { # tool src
    local tool=$1 src=$2 dest=$work/ssh/dest t0 c0 c1 rc=0 r=() name
    name=$(basename "$src")
    rm -rf "${dest:?}/$name"
    [ -d "$src" ] && r=(-r)
    c0=$(proc_cpu "$sshd_pid")
    t0=$(now)
    case $tool in
        scp) timed "$work/t.tx" timeout "$send_timeout" scp "${scp_legacy[@]}" "${r[@]}" -q \
            -F "$work/ssh/config" "$src" "bench:$dest/" 2> "$work/ssh/client.err" || rc=$? ;;
        sftp)
            printf 'put %s "%s" "%s/"\n' "${r[*]}" "$src" "$dest" > "$work/ssh/batch"
            timed "$work/t.tx" timeout "$send_timeout" sftp -q -b "$work/ssh/batch" \
                -F "$work/ssh/config" bench > /dev/null 2> "$work/ssh/client.err" || rc=$? ;;
        rsync) timed "$work/t.tx" timeout "$send_timeout" rsync -a --whole-file \
            -e "ssh -F $work/ssh/config" "$src" "bench:$dest/" 2> "$work/ssh/client.err" || rc=$? ;;
    esac
    [ "$rc" = 0 ] || { echo "e2e.sh: $tool failed ($rc):" >&2; cat "$work/ssh/client.err" >&2; return 1; }
    timed "$work/t.sync" find "$dest/$name" -exec sync {} +
    o_t=$(since "$t0")
    wait_reaped "$sshd_pid"
    c1=$(proc_cpu "$sshd_pid")
    o_cpu=$(cpu_sum "$(awk -v a="$c0" -v b="$c1" 'BEGIN {print b - a}')" "$work/t.tx" "$work/t.sync")
    o_rss=$(rss_of "$work/t.tx")
}

# Private sshd on 127.0.0.1:$ssh_port as the current user; sets sshd_pid, scp_legacy,
# ssh_ver; prints why not on failure.
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
    sshd_pid=$!
    scp_legacy=()
    # OpenSSH >= 9.0 scp speaks SFTP unless -O; ask for the classic protocol when known
    grep -q -- '-[0-9A-Za-z]*O' <<< "$(scp 2>&1 || true)" && scp_legacy=(-O)
    ssh_ver=$(ssh -V 2>&1 | cut -d, -f1)
    for _ in $(seq 50); do
        ssh -F "$ssh/config" bench true 2>/dev/null && return 0
        sleep 0.1
    done
    echo "private sshd did not accept a login: $(head -c 300 "$ssh/sshd.err")"
    return 1
}
