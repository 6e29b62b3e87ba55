#!/bin/bash
# The slot benchmark: the real amavisd process with the shipped defaults plus a trained
# Bayes store (clamd, SpamAssassin's rules, Bayes and the SQL log on SQLite, file
# quarantine), fed real corpus mail over N SMTP sessions by amavisd-load, delivering to an
# amavisd-load sink. For each N it reports msgs/s, CPU ms per message of the filter and of
# clamd, p50/p99 latency, and the filter's peak PSS (sampled from /proc every 0.2 s).
#
#   cargo build --release && bash scripts/bench-slot.sh [SESSIONS...]   (default: 1 4 16 64)
#
# Needs clamd running (scripts/test-services.sh starts it) and the corpus
# (scripts/fetch-corpus.sh fetches it). Uses 127.0.0.1:10024 and :10025, so no other
# amavisd may run. BENCH_DIR (default /tmp/amavisd-bench) holds the work folder: its
# Bayes store is trained once, on easy-ham-1 and spam-1; the mail sent is the later sets
# (easy-ham-2, spam-2: BENCH_HAM and BENCH_SPAM messages of each), as a site sees new mail.
# BENCH_COUNT messages per run (default 3000, the set cycled); each run starts a fresh
# process after its prefilter is ready, as after a restart. BENCH_LEARNER=1 turns the
# learner on (spam.learner), its weights trained with Bayes in a store of its own
# (var/bayes-learner.sqlite).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${BENCH_BIN:-$here/target/release}
dir=${BENCH_DIR:-/tmp/amavisd-bench}
count=${BENCH_COUNT:-3000}
sessions=("$@")
[ ${#sessions[@]} -gt 0 ] || sessions=(1 4 16 64)
for b in amavisd amavisd-load amavisd-learn; do
    [ -x "$bin/$b" ] || { echo "no $bin/$b: run cargo build --release first" >&2; exit 1; }
done
clamd_pid=$(pgrep -x clamd | head -1 || true)
[ -n "$clamd_pid" ] || { echo "clamd is not running (bash scripts/test-services.sh)" >&2; exit 1; }
corpus=$(bash "$here/scripts/fetch-corpus.sh" | tail -1)

mkdir -p "$dir/var" "$dir/msgs" "$dir/train"
cd "$dir"
# The corpus package keeps a .json of metadata beside each message (.txt): only the
# messages are mail. (Until 2026-12-06 this script copied both, so half of what it sent
# and learned was JSON; a folder made so is made anew.)
if ls msgs | grep -q '\.json\.eml$'; then
    echo "msgs/ holds the corpus's JSON metadata files: making it and the Bayes store anew" >&2
    rm -rf msgs train var/bayes.sqlite*; mkdir -p msgs train
fi
for set in spam-1 easy-ham-1; do
    [ -n "$(ls "train/$set" 2>/dev/null)" ] || { mkdir -p "train/$set"; cp "$corpus/$set/"*.txt "train/$set/"; }
done
store=var/bayes.sqlite; learner=()
[ -z "${BENCH_LEARNER:-}" ] || { store=var/bayes-learner.sqlite; learner=(--learner); }
if [ ! -s "$store" ]; then
    echo "training the Bayes store (once) ..." >&2
    # One run: the classes interleaved, as the learner needs.
    "$bin/amavisd-learn" --db "sqlite:$store" "${learner[@]}" --spam train/spam-1 --ham train/easy-ham-1 >&2
fi
if [ -z "$(ls msgs)" ]; then
    ls "$corpus/easy-ham-2" | grep '\.txt$' | head -"${BENCH_HAM:-1200}" | while read -r f; do cp "$corpus/easy-ham-2/$f" "msgs/ham-$f.eml"; done
    ls "$corpus/spam-2" | grep '\.txt$' | head -"${BENCH_SPAM:-810}" | while read -r f; do cp "$corpus/spam-2/$f" "msgs/spam-$f.eml"; done
fi
sed "s|^bayes_store = \"\"|bayes_store = \"sqlite:$store\"|" "$here/etc/amavisd.toml" > amavisd.toml
[ -z "${BENCH_LEARNER:-}" ] || sed -i 's/^learner = false/learner = true/' amavisd.toml
# BENCH_EXTRACT=off: attachments not read for the rules ([spam] extract = false).
[ "${BENCH_EXTRACT:-}" != off ] || sed -i 's/^extract = true/extract = false/' amavisd.toml
# BENCH_DNS: "off" runs without the network checks ([dns] enabled = false); an address
# ("127.0.0.1:10053") points them at that server; unset: the shipped default (on, through
# /etc/resolv.conf).
case ${BENCH_DNS:-} in
  "") ;;
  off) sed -i '/^\[dns\]/,/^\[/ s/^enabled = true/enabled = false/' amavisd.toml ;;
  *) sed -i "/^\[dns\]/,/^\[/ s/^servers = \[\]/servers = [\"$BENCH_DNS\"]/" amavisd.toml ;;
esac
grep -q "^bayes_store = \"sqlite:$store\"" amavisd.toml

ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
filter=; sink=
cleanup() { [ -z "$filter" ] || kill "$filter" 2>/dev/null || true; [ -z "$sink" ] || kill "$sink" 2>/dev/null || true; }
trap cleanup EXIT

echo "| sessions | msgs/s | filter CPU ms/msg | clamd CPU ms/msg | p50 ms | p99 ms | peak PSS MiB |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
for n in "${sessions[@]}"; do
    "$bin/amavisd-load" sink --listen 127.0.0.1:10025 --time 3600 > sink.log 2>&1 &
    sink=$!
    rm -f amavisd.log.bench
    "$bin/amavisd" -c amavisd.toml foreground > amavisd.log.bench 2>&1 &
    filter=$!
    started=$(date +%s.%N)
    for _ in $(seq 1 600); do
        grep -q "prefilter ready\|literal prefilter only" amavisd.log.bench && break
        kill -0 "$filter" 2>/dev/null || { cat amavisd.log.bench >&2; exit 1; }
        sleep 0.1
    done
    ready=$(echo "$(date +%s.%N) - $started" | bc)
    echo "sessions $n: full speed $ready s after start ($(grep -o 'one-pass prefilter ready.*' amavisd.log.bench | cut -c1-90))" >&2
    : > pss
    ( while kill -0 "$filter" 2>/dev/null; do awk '/^Pss:/{print $2}' "/proc/$filter/smaps_rollup" >> pss 2>/dev/null; sleep 0.2; done ) &
    sampler=$!
    f0=$(ticks "$filter"); c0=$(ticks "$clamd_pid")
    out=$("$bin/amavisd-load" send --sessions "$n" --count "$count" --time 600 --dir msgs 2>&1 | tail -1)
    f1=$(ticks "$filter"); c1=$(ticks "$clamd_pid")
    kill "$sampler" 2>/dev/null || true
    echo "  $out" >&2
    rate=$(echo "$out" | sed -n 's/.*: \([0-9.]*\) msg\/s.*/\1/p')
    p50=$(echo "$out" | sed -n 's/.*p50 \([0-9.]*\) ms.*/\1/p')
    p99=$(echo "$out" | sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p')
    sent=$(echo "$out" | sed -n 's/^send: \([0-9]*\) sent.*/\1/p')
    fcpu=$(echo "scale=2; ($f1 - $f0) * 1000 / $hz / $sent" | bc)
    ccpu=$(echo "scale=2; ($c1 - $c0) * 1000 / $hz / $sent" | bc)
    peak=$(( $(sort -n pss | tail -1) / 1024 ))
    echo "| $n | $rate | $fcpu | $ccpu | $p50 | $p99 | $peak |"
    kill "$filter" "$sink"; wait "$filter" "$sink" 2>/dev/null || true
    filter=; sink=
done
