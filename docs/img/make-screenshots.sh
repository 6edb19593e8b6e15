#!/usr/bin/env bash
# Regenerates the screenshots in docs/img: each scenario's traces (Raft and ZAB; Raft without
# and with pre-vote for disruptive-rejoin), the viewer page, and headless Chromium at a moment
# of the story (virtual µs after #t=).
set -euo pipefail
B=${B:-target/release/consensus-lab}
OUT=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
shot() { # name time trace1 trace2
  "$B" view "$WORK/$3" "$WORK/$4" -o "$WORK/$1.html" >/dev/null
  timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$WORK/profile-$1" --hide-scrollbars --window-size=1400,1150 \
    --virtual-time-budget=3000 --screenshot="$OUT/$1.png" "file://$WORK/$1.html#t=$2" 2>/dev/null
}
for s in election leader-crash split-vote replication partition lagging-follower \
         disruptive-rejoin even-cluster stale-proposal; do
  "$B" scenario "$s" --trace "$WORK/$s.jsonl" >/dev/null 2>&1
done
shot election 157000 election.raft.jsonl election.zab.jsonl
shot leader-crash 387000 leader-crash.raft.jsonl leader-crash.zab.jsonl
shot split-vote 153000 split-vote.raft.jsonl split-vote.zab.jsonl
shot replication 364300 replication.raft.jsonl replication.zab.jsonl
shot partition 712000 partition.raft.jsonl partition.zab.jsonl
shot lagging-follower 1600000 lagging-follower.raft.jsonl lagging-follower.zab.jsonl
shot disruptive-rejoin 2361000 disruptive-rejoin.raft-no-pre-vote.jsonl disruptive-rejoin.raft-pre-vote.jsonl
shot even-cluster 1760000 even-cluster.raft.jsonl even-cluster.zab.jsonl
shot stale-proposal 465000 stale-proposal.raft.jsonl stale-proposal.zab.jsonl
echo "screenshots written to $OUT"
