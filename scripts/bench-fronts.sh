#!/bin/bash
# The front ends side by side: bench-slot.sh's messages and configuration (clamd, SpamAssassin's
# rules, the trained Bayes store, SQL log on SQLite, file quarantine) through each way in:
#
#   smtp    amavisd-load over SMTP to our :10024, reinjected to a sink on :10025 (the slot)
#   milter  amavisd-load over SMTP to a private Postfix smtpd on :10026 whose smtpd_milters is
#           our [[milter]] on :10030; Postfix relays what it accepts to the sink on :10025.
#           The Postfix column is its CPU (smtpd, cleanup, qmgr, smtp) per message.
#   postfix the same Postfix without the milter (no filter at all): what Postfix alone costs,
#           so that milter minus postfix is what the milter adds
#   http    rspamc -n N to our [http] on :11333 (/checkv2) with amavisd-load's envelope, as
#           bench-peers.sh measures rspamd (no MTA: the SMTP hops the others pay are left out)
#
# For each front and N: msgs/s, filter CPU ms/msg, Postfix CPU ms/msg (milter), clamd CPU
# ms/msg, p50/p99 ms (amavisd-load's, or rspamc's per-message times for http).
#
#   cargo build --release && bash scripts/bench-slot.sh 1 && bash scripts/bench-fronts.sh [N...]
#   FRONTS="milter http" BENCH_COUNT=2000          (defaults: smtp postfix milter http, 2000)
#
# Needs root (Postfix), clamd, Postfix and rspamc (.ci/run installs them), and bench-slot.sh run
# once (it fills $BENCH_DIR). Takes 127.0.0.1:10024, 10025, 10026, 10030 and 11333.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
bin=$here/target/release
dir=${BENCH_DIR:-/tmp/amavisd-bench}
count=${BENCH_COUNT:-2000}
fronts=${FRONTS:-smtp postfix milter http}
sessions=("$@")
[ ${#sessions[@]} -gt 0 ] || sessions=(1 4 16)
hz=$(getconf CLK_TCK)
die() { echo "bench-fronts: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (Postfix)"
for b in amavisd amavisd-load; do [ -x "$bin/$b" ] || die "no $bin/$b: cargo build --release"; done
[ -s "$dir/amavisd.toml" ] && [ -n "$(ls "$dir/msgs" 2>/dev/null)" ] ||
    die "$dir is not ready: run scripts/bench-slot.sh once"
command -v rspamc >/dev/null || die "rspamc is missing (apt-get install rspamd; .ci/run does)"
[ -x /usr/sbin/postfix ] || die "Postfix is missing (.ci/run installs it)"
clamd_pid=$(pgrep -x clamd | head -1 || true)
[ -n "$clamd_pid" ] || die "clamd is not running (bash scripts/test-services.sh clamd)"
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in 10024 10025 10026 10030 11333; do ! listening $p || die "127.0.0.1:$p is in use"; done
cd "$dir"

# bench-slot.sh's configuration, with the milter and HTTP listeners on.
sed '/^\[http\]/,/^\[/ s/^listen = ""/listen = "127.0.0.1:11333"/' amavisd.toml > fronts.toml
printf '\n[[milter]]\ninet = "127.0.0.1:10030"\n' >> fronts.toml
grep -q '^listen = "127.0.0.1:11333"' fronts.toml || die "no [http] listen in $dir/amavisd.toml"

# A process and its children (Postfix's master and its daemons), reaped ones included.
family() { echo "$1"; pgrep -P "$1" || true; }
ticks() { for p in $(family "$1"); do sed 's/.*) //' "/proc/$p/stat"; done 2>/dev/null |
    awk '{t += $12 + $13 + $14 + $15} END {print t + 0}'; }
ms_per() { echo "scale=2; $1 * 1000 / $hz / $2" | bc; }

filter=; sink=; pf=
cleanup() {
    [ -z "$filter" ] || kill "$filter" 2>/dev/null || true
    [ -z "$sink" ] || kill "$sink" 2>/dev/null || true
    [ -z "$pf" ] || /usr/sbin/postfix -c "$pf/etc" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

up() {
    "$bin/amavisd-load" sink --listen 127.0.0.1:10025 --time 3600 > sink.log 2>&1 & sink=$!
    : > fronts.log
    "$bin/amavisd" -c fronts.toml foreground > fronts.log 2>&1 & filter=$!
    for _ in $(seq 1 600); do
        grep -q "prefilter ready\|literal prefilter only" fronts.log && break
        kill -0 "$filter" 2>/dev/null || { cat fronts.log >&2; exit 1; }
        sleep 0.1
    done
    for _ in $(seq 1 100); do listening 10030 && listening 11333 && break; sleep 0.1; done
    listening 10030 && listening 11333 || die "the milter or HTTP listener is not up (see $dir/fronts.log)"
}
down() { kill "$filter" "$sink"; wait "$filter" "$sink" 2>/dev/null || true; filter=; sink=; }

# A private Postfix: smtpd on :10026 with our milter (or none, given "none"), relaying to
# the sink.
postfix_up() {
    local milters=inet:127.0.0.1:10030
    [ "${1:-}" != none ] || milters=
    pf=$dir/postfix
    rm -rf "$pf"; mkdir -p "$pf/etc" "$pf/queue"; chmod 755 "$pf"
    cat > "$pf/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $pf/queue
data_directory = $pf/data
maillog_file = $pf/maillog
maillog_file_prefixes = $pf
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.test
mydomain = test
mydestination =
relay_domains = example.com
mynetworks = 127.0.0.0/8
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
smtpd_relay_restrictions = permit_mynetworks, reject
default_transport = smtp:[127.0.0.1]:10025
relay_transport = smtp:[127.0.0.1]:10025
smtp_dns_support_level = disabled
alias_maps =
alias_database =
biff = no
smtpd_milters = $milters
milter_protocol = 6
milter_default_action = tempfail
milter_content_timeout = 300s
EOF
    cat > "$pf/etc/master.cf" <<'EOF'
127.0.0.1:10026 inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
EOF
    /usr/sbin/postfix -c "$pf/etc" start >/dev/null 2>&1 || die "postfix start failed (see $pf/maillog)"
    for _ in $(seq 100); do listening 10026 && break; sleep 0.1; done
}
postfix_down() { /usr/sbin/postfix -c "$pf/etc" stop >/dev/null 2>&1 || true; sleep 1; pf=; }
postfix_master() { tr -d ' ' < "$pf/queue/pid/master.pid" 2>/dev/null || true; }

# rspamc's per-message times, sorted, as a percentile in ms.
pct() { echo "$2" | sed -n "$(( ($1 * $3 + 99) / 100 ))p" | awk '{printf "%.2f", $1*1000}'; }

mapfile -t msgs < <(ls msgs)
echo "| front | sessions | msgs/s | filter CPU ms/msg | Postfix CPU ms/msg | clamd CPU ms/msg | p50 ms | p99 ms |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for front in $fronts; do
    for n in "${sessions[@]}"; do
        up
        pcpu=-; target=127.0.0.1:10024
        case $front in
          milter) postfix_up; target=127.0.0.1:10026 ;;
          postfix) postfix_up none; target=127.0.0.1:10026 ;;
        esac
        f0=$(ticks "$filter"); c0=$(ticks "$clamd_pid"); m=$(postfix_master); p0=$( [ -n "$m" ] && ticks "$m" || echo 0)
        if [ "$front" = http ]; then
            files=(); for ((i = 0; i < count; i++)); do files+=("msgs/${msgs[i % ${#msgs[@]}]}"); done
            t=$(date +%s.%N)
            rspamc -h 127.0.0.1:11333 -n "$n" -i 127.0.0.1 --helo load0.example -F load0@example.org \
                -r sink0@example.com "${files[@]}" > rspamc.out 2>&1 || true
            t=$(echo "$(date +%s.%N) - $t" | bc)
            sent=$(grep -c '^Action:' rspamc.out || true)
            [ "$sent" = "$count" ] || die "http: $sent of $count messages answered (see $dir/rspamc.out)"
            times=$(sed -n 's/^Results for file: .* (\([0-9.]*\) seconds)$/\1/p' rspamc.out | sort -n)
            rate=$(echo "scale=1; $sent / $t" | bc); p50=$(pct 50 "$times" "$sent"); p99=$(pct 99 "$times" "$sent")
        else
            out=$("$bin/amavisd-load" send --target "$target" --sessions "$n" --count "$count" --time 600 --dir msgs 2>&1 | tail -1)
            echo "  $front $n: $out" >&2
            rate=$(echo "$out" | sed -n 's/.*: \([0-9.]*\) msg\/s.*/\1/p')
            p50=$(echo "$out" | sed -n 's/.*p50 \([0-9.]*\) ms.*/\1/p')
            p99=$(echo "$out" | sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p')
            sent=$(echo "$out" | sed -n 's/^send: \([0-9]*\) sent.*/\1/p')
            [ -n "$sent" ] && [ "$sent" -gt 0 ] || die "$front: nothing sent: $out"
        fi
        if [ "$front" = milter ] || [ "$front" = postfix ]; then
            # What Postfix accepted leaves its queue for the sink: its CPU counts to the end.
            for _ in $(seq 600); do
                /usr/sbin/postqueue -c "$pf/etc" -p 2>/dev/null | grep -q 'Mail queue is empty' && break
                sleep 0.2
            done
            /usr/sbin/postqueue -c "$pf/etc" -p 2>/dev/null | grep -q 'Mail queue is empty' ||
                die "$front: Postfix's queue did not drain (see $pf/maillog)"
            pcpu=$(ms_per $(( $(ticks "$m") - p0 )) "$sent")
        fi
        fcpu=$(ms_per $(( $(ticks "$filter") - f0 )) "$sent")
        ccpu=$(ms_per $(( $(ticks "$clamd_pid") - c0 )) "$sent")
        echo "| $front | $n | $rate | $fcpu | $pcpu | $ccpu | $p50 | $p99 |"
        [ -z "$pf" ] || postfix_down
        down
    done
done
