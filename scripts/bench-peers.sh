#!/bin/bash
# The peers of the slot benchmark: bench-slot.sh's messages ($BENCH_DIR/msgs) through other
# filters, printed as its table with a system column. No network tests anywhere, as our engine
# runs none; Bayes everywhere, trained once on spam-1 and easy-ham-1 as bench-slot.sh trains ours.
#
#   amavisd-new  Debian's amavisd-new 2.13, SpamAssassin 4.0 in process, the running clamd, with
#                its own amavisd.conf (Debian's conf.d defaults) in $BENCH_DIR/amavisd-new, fed
#                and measured as bench-slot.sh does ours (amavisd-load over SMTP to :10024, a
#                sink on :10025). $max_servers is the session count capped at AMAVIS_MAX_SERVERS
#                (default 16: a child holds a SpamAssassin, ~150 MB resident, and 2 cores are
#                saturated long before); more sessions wait in the listen queue as Postfix's
#                would. CPU and PSS: master and children, reaped ones included (cutime).
#   rspamd       Debian's rspamd 3.4 (installed when missing) on /etc/rspamd with our local.d in
#                $BENCH_DIR/rspamd and RSPAMD_WORKERS normal workers (default: the cores; its own
#                default is cores - 2, at least 1). No MTA: `rspamc -n N` sends the messages over
#                HTTP to :11333 with amavisd-load's envelope, so the SMTP hops the others pay are
#                left out; p50/p99 are rspamc's per-message times (~4 ms ticks). DNS modules off
#                and the resolver on 127.0.0.1:53, where nothing answers, so a forgotten lookup
#                fails at once (its log says "dns req: 0"). Bayes in Redis db RSPAMD_REDIS_DB
#                (default 7). RSPAMD_CLAMAV=1 adds its antivirus module on the same clamd (which
#                by default gets attachments only); without it the clamd column is "-".
#
#   bash scripts/bench-peers.sh [SESSIONS...]      (default: 1 4 16)
#   PEERS="amavisd-new rspamd" BENCH_COUNT=N       (default 1000 for amavisd-new, 3000 for rspamd)
#
# Needs root, clamd and Redis (scripts/test-services.sh clamd redis), bench-slot.sh run once and
# target/release/amavisd-load; takes 127.0.0.1:10024, 10025, 11333 and 11334. The table goes to
# stdout, progress to stderr; a peer that does not start or loses mail stops the run (exit 1).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
bin=$here/target/release
dir=${BENCH_DIR:-/tmp/amavisd-bench}
peers=${PEERS:-amavisd-new rspamd}
sessions=("$@")
[ ${#sessions[@]} -gt 0 ] || sessions=(1 4 16)
max_servers=${AMAVIS_MAX_SERVERS:-16}
workers=${RSPAMD_WORKERS:-$(nproc)}
rdb=${RSPAMD_REDIS_DB:-7}
hz=$(getconf CLK_TCK)
die() { echo "bench-peers: $*" >&2; exit 1; }
for p in $peers; do case $p in amavisd-new|rspamd) ;; *) die "PEERS: amavisd-new rspamd" ;; esac; done
[ "$(id -u)" = 0 ] || die "needs root (daemon users, apt-get)"
[ -x "$bin/amavisd-load" ] || die "no $bin/amavisd-load: run cargo build --release first"
[ -n "$(ls "$dir/msgs" 2>/dev/null)" ] || die "$dir/msgs is empty: scripts/bench-slot.sh fills it"
[ -d "$dir/train/spam-1" ] || die "$dir/train is missing: scripts/bench-slot.sh fills it (the corpus's mail, without its JSON)"
! ls "$dir/msgs" | grep -q '\.json\.eml$' || die "$dir/msgs holds JSON metadata: run scripts/bench-slot.sh once to make it anew"
clamd_pid=$(pgrep -x clamd | head -1 || true)
[ -n "$clamd_pid" ] || die "clamd is not running (bash scripts/test-services.sh clamd)"
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in 10024 10025 11333 11334; do ! listening $p || die "127.0.0.1:$p is in use"; done

# A daemon and its children (amavisd-new's master and children, rspamd's main and workers).
family() { echo "$1"; pgrep -P "$1" || true; }
# Its CPU ticks: utime+stime+cutime+cstime (reaped children land in the parent's cutime), read
# after the ")" that ends the command name, which may hold spaces ("amavisd (master)").
ticks() { for p in $(family "$1"); do sed 's/.*) //' "/proc/$p/stat"; done 2>/dev/null |
    awk '{t += $12 + $13 + $14 + $15} END {print t}'; }
clamd_ticks() { sed 's/.*) //' "/proc/$clamd_pid/stat" | awk '{print $12 + $13}'; }
# Its PSS summed over the family, every 0.2 s into file $2 until killed.
sample_pss() {
    : > "$2"
    while kill -0 "$1" 2>/dev/null; do sleep 0.2
        for p in $(family "$1"); do cat "/proc/$p/smaps_rollup"; done 2>/dev/null |
            awk '/^Pss:/ {t += $2} END {print t}' >> "$2"; done
}
ms() { awk -v t="$1" -v hz="$hz" -v n="$2" 'BEGIN {printf "%.2f", t * 1000 / hz / n}'; }
# row SYSTEM SESSIONS MSGS/S TICKS CLAMD-TICKS|- SENT P50 P99 PSS-FILE
row() {
    echo "| $1 | $2 | $3 | $(ms "$4" "$6") | $([ "$5" = - ] && echo - || ms "$5" "$6") | $7 | $8 |" \
        "$(( $(sort -n "$9" | tail -1) / 1024 )) |"
}

# TERM, which both daemons pass on to their children; after 30 s KILL the whole family.
stop() {
    local fam; fam=$(family "$1")
    kill "$1" 2>/dev/null || return 0
    for _ in $(seq 150); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.2; done
    kill -9 $fam 2>/dev/null || true
}
daemon=; sink=; sampler=
cleanup() {
    [ -z "$sampler" ] || kill "$sampler" 2>/dev/null || true
    [ -z "$daemon" ] || stop "$daemon"; [ -z "$sink" ] || stop "$sink"; wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

amavisd_new() {
    local home=$dir/amavisd-new count=${BENCH_COUNT:-1000} n nsrv greet out t0 t1 c0 c1 sent
    [ -x /usr/sbin/amavisd ] && id amavis >/dev/null 2>&1 || die "apt-get install amavisd-new"
    mkdir -p "$home"/{tmp,db,var,virusmails,bayes,sa}
    chown amavis:amavis "$home"/{tmp,db,var,virusmails,bayes}  # amavisd runs as amavis
    rm -rf "$home"/virusmails/* "$home"/tmp/*  # earlier runs' quarantine and leftovers
    # SpamAssassin's site configuration is Debian's /etc/spamassassin (its .pre files load the
    # plugins) plus our bayes_path, so that the Debian service's store is not touched.
    for f in /etc/spamassassin/*.pre /etc/spamassassin/*.cf; do ln -sf "$f" "$home/sa/"; done
    printf 'bayes_path %s/bayes/bayes\nbayes_file_mode 0770\n' "$home" > "$home/sa/zz-bench.cf"
    if [ ! -e "$home/bayes/trained" ]; then
        echo "amavisd-new: training SpamAssassin's Bayes (once, about a minute) ..." >&2
        sa-learn --siteconfigpath "$home/sa" --spam "$dir/train/spam-1" >&2
        sa-learn --siteconfigpath "$home/sa" --ham "$dir/train/easy-ham-1" >&2
        chown -R amavis:amavis "$home/bayes"; touch "$home/bayes/trained"
    fi
    for n in "${sessions[@]}"; do
        nsrv=$(( n < max_servers ? n : max_servers ))
        # Debian's conf.d settings (01-debian, 20-debian_defaults, 25-amavis_helpers) with the
        # checks on, paths here, one log line a message to a file and no network tests. The
        # AM.PDP socket stays as Debian has it: loading AM.PDP also loads Amavis::IO::Zlib,
        # without which 2.13 fails to write the gzipped spam quarantine. clamd is asked over
        # its socket with INSTREAM (the "clamd:" scheme), so it need not read our temp files
        # (Debian's CONTSCAN entry would need clamav in the amavis group and a clamd restart).
        umask 022  # amavisd refuses a config file others can write
        sed -e "s|@HOME@|$home|" -e "s|@N@|$nsrv|" > "$home/amavisd.conf" <<'EOF'
use strict;
$ENV{PATH} = $path = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/sbin:/usr/bin:/bin';
$MYHOME = '@HOME@';  $TEMPBASE = "$MYHOME/tmp";  $ENV{TMPDIR} = $TEMPBASE;  $db_home = "$MYHOME/db";
$pid_file = "$MYHOME/var/amavisd.pid";  $lock_file = "$MYHOME/var/amavisd.lock";
$daemon_user = 'amavis';  $daemon_group = 'amavis';  $max_servers = @N@;
$myhostname = 'bench.example.com';  $mydomain = 'example.com';  @local_domains_acl = ('.example.com');
$inet_socket_port = 10024;  $inet_socket_bind = '127.0.0.1';
$unix_socketname = "$MYHOME/var/amavisd.sock";  $interface_policy{'SOCK'} = 'AM.PDP-SOCK';
$policy_bank{'AM.PDP-SOCK'} = { protocol => 'AM.PDP', auth_required_release => 0 };
$forward_method = 'smtp:[127.0.0.1]:10025';  $notify_method = $forward_method;
$DO_SYSLOG = 0;  $LOGFILE = "$MYHOME/var/amavis.log";  $log_level = 0;  $log_recip_templ = undef;
$enable_db = 1;  $enable_dkim_verification = 0;
$file = 'file';  $gzip = 'gzip';  $bzip2 = 'bzip2';  $lzop = 'lzop';  $cabextract = 'cabextract';
$rpm2cpio = ['rpm2cpio.pl', 'rpm2cpio'];  $uncompress = ['uncompress', 'gzip -d', 'zcat'];
$arc = ['nomarch', 'arc'];  $unarj = ['arj', 'unarj'];  $unrar = ['unrar-free'];  $zoo = 'zoo';
$unfreeze = undef;  $lha = undef;  $pax = 'pax';  $cpio = 'cpio';  $ar = 'ar';  $ripole = 'ripole';
@bypass_virus_checks_maps = (0);  @bypass_spam_checks_maps = (0);
$QUARANTINEDIR = "$MYHOME/virusmails";  $quarantine_subdir_levels = 1;
$sa_tag_level_deflt = 2.0;  $sa_tag2_level_deflt = 6.31;  $sa_kill_level_deflt = 6.31;
$sa_dsn_cutoff_level = 10;  $sa_spam_subject_tag = '***SPAM*** ';  $sa_mail_body_size_limit = 200*1024;
$sa_local_tests_only = 1;  $sa_siteconfigpath = "$MYHOME/sa";  $MAXLEVELS = 14;  $MAXFILES = 1500;
$MIN_EXPANSION_QUOTA = 100*1024;  $MAX_EXPANSION_QUOTA = 300*1024*1024;
$final_virus_destiny = D_DISCARD;  $final_banned_destiny = D_DISCARD;  $final_spam_destiny = D_PASS;
$final_bad_header_destiny = D_PASS;  $virus_admin = "postmaster\@$mydomain";
@viruses_that_fake_sender_maps = (new_RE([qr'\bEICAR\b'i => 0], [qr/.*/ => 1]));
@keep_decoded_original_maps = (new_RE(qr'^MAIL-UNDECIPHERABLE$',
  qr'^(ASCII(?! cpio)|text|uuencoded|xxencoded|binhex)'i));
$banned_filename_re = new_RE(qr'\.[^./]*\.(exe|vbs|pif|scr|bat|cmd|com|cpl|dll)\.?$'i,
  qr'\{[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}\}?$'i, qr'^application/x-msdownload$'i,
  qr'^application/x-msdos-program$'i, qr'^application/hta$'i,
  qr'.\.(exe|vbs|pif|scr|bat|cmd|com|cpl)$'i, qr'^\.(exe-ms)$');
@av_scanners = (['ClamAV-clamd', \&ask_daemon, ['{}/*', 'clamd:/var/run/clamav/clamd.ctl'],
  qr/\bOK$/m, qr/\bFOUND$/m, qr/^.*?: (?!Infected Archive)(.*) FOUND$/m]);
@av_scanners_backup = ();
1;
EOF
        rm -f "$home/var/amavis.log"
        /usr/sbin/amavisd -c "$home/amavisd.conf" foreground > "$home/var/stderr.log" 2>&1 &
        daemon=$!
        # It listens first and compiles SpamAssassin's rules after: ready once the greeting
        # comes and all children are there (no children when $max_servers is 1).
        for _ in $(seq 600); do
            listening 10024 && break
            kill -0 "$daemon" 2>/dev/null ||
                die "amavisd-new did not start: $(tail -qn 3 "$home"/var/{stderr,amavis}.log 2>&1)"
            sleep 0.1
        done
        greet=
        exec 3<>/dev/tcp/127.0.0.1/10024 && read -r -t 300 greet <&3 && echo QUIT >&3 || true
        exec 3<&-
        [ "${greet#220}" != "$greet" ] || die "amavisd-new does not greet: see $home/var/amavis.log"
        for _ in $(seq 300); do
            [ "$nsrv" = 1 ] || [ "$(pgrep -c -P "$daemon")" -ge "$nsrv" ] && break; sleep 0.1
        done
        echo "amavisd-new, sessions $n: ready, \$max_servers $nsrv" >&2
        # From here as bench-slot.sh (the sink, amavisd-load, its one-line summary), but with an
        # hour's bound on the run rather than 10 minutes: amavisd-new is slow.
        "$bin/amavisd-load" sink --listen 127.0.0.1:10025 --time 7200 > "$home/sink.log" 2>&1 &
        sink=$!
        sample_pss "$daemon" "$home/pss" & sampler=$!
        t0=$(ticks "$daemon"); c0=$(clamd_ticks)
        out=$("$bin/amavisd-load" send --sessions "$n" --count "$count" --time 3600 \
            --dir "$dir/msgs" 2>&1 || true)
        t1=$(ticks "$daemon"); c1=$(clamd_ticks)
        kill "$sampler"; sampler=
        echo "$out" | sed 's/^/  /' >&2
        sent=$(echo "$out" | sed -n 's/^send: \([0-9]*\) sent, 0 failed.*/\1/p')
        [ "${sent:-0}" = "$count" ] || die "amavisd-new: not all mail went through (see $home/var)"
        row amavisd-new "$n" "$(echo "$out" | sed -n 's/.*: \([0-9.]*\) msg\/s.*/\1/p')" \
            $((t1 - t0)) $((c1 - c0)) "$sent" \
            "$(echo "$out" | sed -n 's/.*p50 \([0-9.]*\) ms.*/\1/p')" \
            "$(echo "$out" | sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p')" "$home/pss"
        stop "$daemon"; stop "$sink"; daemon=; sink=
    done
}

rspamd_peer() {
    local home=$dir/rspamd count=${BENCH_COUNT:-3000} av=${RSPAMD_CLAMAV:-0} n i f t0 t1 c0 c1
    local sent times msgs files rc_d=
    if ! command -v rspamd >/dev/null; then  # without starting its service, as test-services.sh
        echo "rspamd: installing Debian's package ..." >&2
        [ -e /usr/sbin/policy-rc.d ] || { rc_d=/usr/sbin/policy-rc.d; printf '#!/bin/sh\nexit 101\n' > $rc_d
            chmod +x $rc_d; }
        apt-get update -qq >&2 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rspamd >&2 || true
        [ -z "$rc_d" ] || rm -f "$rc_d"
        command -v rspamd >/dev/null || die "rspamd: apt-get install rspamd failed"
    fi
    listening 6379 || die "rspamd: no Redis on 127.0.0.1:6379 (bash scripts/test-services.sh redis)"
    mkdir -p "$home"/{local/local.d,db,run,log}
    chown _rspamd:_rspamd "$home"/{db,run,log}
    # Debian's rspamd.conf without the proxy and fuzzy workers (nothing talks to them here),
    # on 127.0.0.1 only, reading our local.d instead of /etc/rspamd/local.d.
    sed "s|@W@|$workers|" > "$home/rspamd.conf" <<'EOF'
.include "$CONFDIR/common.conf"
options {
    pidfile = "$RUNDIR/rspamd.pid";
    .include "$CONFDIR/options.inc"
    .include(try=true; priority=1,duplicate=merge) "$LOCAL_CONFDIR/local.d/options.inc"
}
logging { type = "file"; filename = "$LOGDIR/rspamd.log"; .include "$CONFDIR/logging.inc" }
worker "normal" { bind_socket = "127.0.0.1:11333"; count = @W@; .include "$CONFDIR/worker-normal.inc" }
worker "controller" { bind_socket = "127.0.0.1:11334"; .include "$CONFDIR/worker-controller.inc" }
EOF
    cd "$home/local/local.d"
    echo 'dns { nameserver = ["127.0.0.1:53"]; timeout = 0.1s; retransmits = 1; }' > options.inc
    for f in rbl spf dkim dmarc arc asn fuzzy_check; do echo 'enabled = false;' > $f.conf; done
    echo 'phishtank_enabled = false;' > phishing.conf
    echo 'from_enabled = false;' > hfilter.conf  # its MX/A lookups of the sender's domain
    # Redis for Bayes only: set here rather than in redis.conf, which would also turn on
    # greylisting, ratelimits, history and the other Redis modules.
    printf 'servers = "127.0.0.1:6379";\ndb = "%s";\n' "$rdb" > classifier-bayes.conf
    rm -f antivirus.conf
    [ "$av" != 1 ] || echo 'clamav { type = "clamav"; symbol = "CLAM_VIRUS";
        servers = "/var/run/clamav/clamd.ctl"; }' > antivirus.conf
    cd "$home"
    learns() { redis-cli -n "$rdb" hget RS "learns_$1" | grep -x '[0-9][0-9]*' || echo 0; }
    # The messages in amavisd-load's order, cycled to $count.
    mapfile -t msgs < <(ls "$dir/msgs")
    files=()
    for ((i = 0; i < count; i++)); do files+=("$dir/msgs/${msgs[i % ${#msgs[@]}]}"); done
    up() {
        : > log/rspamd.log
        rspamd -f -u _rspamd -g _rspamd -c "$home/rspamd.conf" --var CONFDIR=/etc/rspamd \
            --var LOCAL_CONFDIR="$home/local" --var DBDIR="$home/db" --var RUNDIR="$home/run" \
            --var LOGDIR="$home/log" > log/stderr.log 2>&1 & daemon=$!
        # Ready once hs_helper has compiled (first start, ~15 s) or checked (cached) the
        # Hyperscan databases and told the workers, which it postpones by 1 s.
        for _ in $(seq 3000); do
            grep -q 'rspamd_rs_compile_cb: compiled' log/rspamd.log && listening 11333 && break
            kill -0 "$daemon" 2>/dev/null ||
                die "rspamd did not start: $(tail -qn 3 log/stderr.log log/rspamd.log 2>&1)"
            sleep 0.1
        done
        sleep 2
        listening 11333 || die "rspamd does not listen on 127.0.0.1:11333 (see $home/log)"
    }
    # A first start compiles the Hyperscan databases, which leaves hs_helper ~90 MB bigger, and
    # trains Bayes; the measured runs are restarts on the cached databases, as a site runs.
    if ! ls db/*.hs >/dev/null 2>&1 || [ "$(learns spam)" -lt 200 ] || [ "$(learns ham)" -lt 200 ]; then
        echo "rspamd: first start: Hyperscan databases, Bayes in Redis db $rdb ..." >&2
        up
        # Through the controller; what it refuses to learn is in log/learn.log.
        rspamc -h 127.0.0.1:11334 -n 4 learn_spam "$dir/train/spam-1" > log/learn.log 2>&1 || true
        rspamc -h 127.0.0.1:11334 -n 4 learn_ham "$dir/train/easy-ham-1" >> log/learn.log 2>&1 || true
        [ "$(learns spam)" -ge 200 ] && [ "$(learns ham)" -ge 200 ] ||
            die "rspamd: Bayes training failed (see $home/log/learn.log)"
        echo "  Bayes: $(learns spam) spam, $(learns ham) ham learned" >&2
        stop "$daemon"; daemon=
    fi
    for n in "${sessions[@]}"; do
        up
        echo "rspamd, sessions $n: $workers normal workers ready" >&2
        sample_pss "$daemon" pss & sampler=$!
        t0=$(ticks "$daemon"); c0=$(clamd_ticks); f=$(date +%s.%N)
        rspamc -h 127.0.0.1:11333 -n "$n" -i 127.0.0.1 --helo load0.example -F load0@example.org \
            -r sink0@example.com "${files[@]}" > log/rspamc.out 2>&1 || true
        f=$(echo "$(date +%s.%N) - $f" | bc)
        t1=$(ticks "$daemon"); c1=$(clamd_ticks)
        kill "$sampler"; sampler=
        # "Results for file: NAME (0.012 seconds)" a message, errors too; "Action:" only if scanned.
        sent=$(grep -c '^Action:' log/rspamc.out || true)
        [ "$sent" = "$count" ] || die "rspamd: $sent of $count messages scanned (see $home/log)"
        times=$(sed -n 's/^Results for file: .* (\([0-9.]*\) seconds)$/\1/p' log/rspamc.out | sort -n)
        pct() { echo "$times" | sed -n "$(( ($1 * sent + 99) / 100 ))p" | awk '{printf "%.2f", $1*1000}'; }
        echo "  $sent scanned in $f s" >&2
        # clamd's ticks, or "-" when rspamd does not use it.
        local cc=-; [ "$av" != 1 ] || cc=$((c1 - c0))
        row rspamd "$n" "$(echo "scale=1; $sent / $f" | bc)" $((t1 - t0)) "$cc" "$sent" \
            "$(pct 50)" "$(pct 99)" pss
        stop "$daemon"; daemon=
    done
}

echo "| system | sessions | msgs/s | CPU ms/msg | clamd CPU ms/msg | p50 ms | p99 ms | peak PSS MiB |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for p in $peers; do if [ "$p" = rspamd ]; then rspamd_peer; else amavisd_new; fi; done
