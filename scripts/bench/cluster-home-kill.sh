#!/usr/bin/env bash
# A room's home killed mid-meeting (docs/benchmarks.md, "A room outlives its home"): NATS and
# three sfu nodes on loopback; every bot joins at node 2 (its media there); the room's home is
# node 1 (placement: equal load, first by name); node 1 is killed with -9 at 22 s of a 40-s
# meeting; churn (6 leaves and rejoins a minute) makes commits before and after.
# usage: scripts/bench/cluster-home-kill.sh PARTICIPANTS OUT.json   (release builds of sfu and
# loadtest: cargo build --release -p sfu -p loadtest; BIN=... for others)
set -u
cd "$(dirname "$0")/../.."
P=$1; OUT=$2; BIN=${BIN:-target/release}
LOGS=$(mktemp -d)
/usr/sbin/nats-server -a 127.0.0.1 -p 24222 -js -sd "$LOGS/nats" > "$LOGS/nats.log" 2>&1 & NATS=$!
sleep 0.5
SECRET=0123456789abcdef0123456789abcdef
for n in 1 2 3; do
  "$BIN/sfu" --listen 127.0.0.1:2808$n --udp-port-min 5${n}500 --udp-port-max 5${n}900 \
    --max-connections-per-ip 500 --max-participants-per-room 200 --token-secret $SECRET \
    --cluster nats://127.0.0.1:24222 --node-id hk$n > "$LOGS/hk$n.log" 2>&1 &
  eval "NODE$n=\$!"
done
sleep 2
"$BIN/loadtest" --url http://127.0.0.1:28082 --token-secret $SECRET --participants "$P" --churn 6 \
  --duration 40s --quiet --json "$OUT" > "$LOGS/loadtest.log" 2>&1 &
LT=$!
sleep 22
grep -l "group created" "$LOGS"/hk*.log | sed 's/^/home before the kill: /'
echo "kill -9 node 1 at $(date +%T.%N)"
kill -9 $NODE1
wait $LT
grep -h "taken over from its log\|back in its room" "$LOGS"/hk2.log "$LOGS"/hk3.log | head -2 | cut -c1-160
grep -h "commit accepted" "$LOGS"/hk2.log "$LOGS"/hk3.log | wc -l | sed 's/^/commits at the new home: /'
kill $NODE2 $NODE3 $NATS 2>/dev/null
wait 2>/dev/null
python3 -c "
import json; r = json.load(open('$OUT'))
print({k: r.get(k) for k in ['participants_joined', 'epoch_changes', 'frames_lost', 'loss_percent',
                             'decrypt_failures', 'frames_verified', 'frames_missed_at_epoch_changes']})"
rm -rf "$LOGS"
