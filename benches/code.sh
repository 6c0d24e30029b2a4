#!/bin/bash
# Short codes, 1 GiB over loopback: raw TCP (socat into a file) vs `send --code` direct and
# through `relay`, then magic-wormhole direct and through its transit relay when
# WORMHOLE_BIN_DIR holds `wormhole` and `twist` (pip install magic-wormhole
# magic-wormhole-mailbox-server magic-wormhole-transit-relay). Usage: benches/code.sh
set -u
B=${B:-$(dirname "$0")/../target/release/ferry-std}
D=$(mktemp -d /tmp/fbench.XXXX)
head -c $((1<<30)) /dev/urandom > $D/big.bin
t() { local s=$(date +%s.%N); "$@"; local e=$(date +%s.%N); echo "$e - $s" | bc; }
# raw TCP
socat -u TCP-LISTEN:7701,reuseaddr OPEN:$D/raw.bin,creat,trunc &
sleep 0.3
raw=$(t socat -u OPEN:$D/big.bin TCP:127.0.0.1:7701)
wait; rm -f $D/raw.bin
echo "raw tcp: $raw s"
# direct
$B --json send $D/big.bin --code --listen 127.0.0.1:0 > $D/s.out 2>/dev/null &
sleep 0.3
code=$(head -1 $D/s.out | python3 -c "import json,sys;print(json.load(sys.stdin)['code'])")
addr=$(head -1 $D/s.out | python3 -c "import json,sys;print(json.load(sys.stdin)['listen'])")
direct=$(FERRY_CODE=$code t $B receive --from $addr --out $D/in1 --yes -q)
wait
cmp $D/big.bin $D/in1/big.bin && echo "direct identical"; rm -rf $D/in1
echo "direct: $direct s"
# relay
$B relay --listen 127.0.0.1:0 > $D/r.out 2>/dev/null &
rp=$!
sleep 0.3
raddr=$(head -1 $D/r.out | sed 's/listening on //')
$B --json send $D/big.bin --code --relay $raddr > $D/s2.out 2>/dev/null &
sleep 0.3
code=$(head -1 $D/s2.out | python3 -c "import json,sys;print(json.load(sys.stdin)['code'])")
relay=$(FERRY_CODE=$code t $B receive --relay $raddr --out $D/in2 --yes -q)
wait $!
cmp $D/big.bin $D/in2/big.bin && echo "relay identical"; rm -rf $D/in2
kill $rp
echo "relay: $relay s"
python3 -c "r=$raw;d=$direct;l=$relay;print(f'raw {1024/r:.0f} MiB/s, direct {1024/d:.0f} MiB/s ({r/d:.2f}x raw), relay {1024/l:.0f} MiB/s ({r/l:.2f}x raw)')"

if [ -x "${WORMHOLE_BIN_DIR:-/nonexistent}/wormhole" ]; then
  W=$WORMHOLE_BIN_DIR
  cd /tmp
  $W/twist wormhole-mailbox --port=tcp:4000:interface=127.0.0.1 > /tmp/wh-mb.log 2>&1 &
  mb=$!
  $W/twist transitrelay --port=tcp:4001:interface=127.0.0.1 > /tmp/wh-tr.log 2>&1 &
  tr=$!
  sleep 3
  export WORMHOLE_RELAY_URL=ws://127.0.0.1:4000/v1 WORMHOLE_TRANSIT_HELPER=tcp:127.0.0.1:4001
  t() { local s=$(date +%s.%N); "$@" >/dev/null 2>&1; local e=$(date +%s.%N); echo "$e - $s" | bc; }
  for mode in direct relay; do
    flag=""; [ $mode = relay ] && flag="--no-listen"
    $W/wormhole send $flag --hide-progress --code 7-purple-sausages $D/big.bin > /tmp/wh-send.log 2>&1 &
    sp=$!
    sleep 1
    rm -rf $D/wh; mkdir -p $D/wh
    el=$(t $W/wormhole receive $flag --hide-progress --accept-file -o $D/wh/big.bin 7-purple-sausages)
    wait $sp
    cmp $D/big.bin $D/wh/big.bin && echo "wormhole $mode identical"
    echo "wormhole $mode: $el s (includes ~1 s of rendezvous)"
    rm -rf $D/wh
  done
  kill $mb $tr
fi
rm -rf "$D"
