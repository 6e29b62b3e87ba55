#!/bin/bash
# Fills target/sa-compat/ (the answers examples/sa_compat.rs compares with) from spamd,
# about 6 messages a second on 2 cores instead of `spamassassin -L -t`'s one a second:
#
#   bash scripts/sa-compat-cache.sh [SETS...]   (default: the development and later sets)
#
# spamd (Debian `spamd`, installed when missing) runs with network tests off (-L), no user
# configuration (-x) and one message per child (--max-conn-per-child=1): a child that has
# scanned one message can answer differently for the next (a rule whose captured tag broke
# its regex stays off for the child's life), which `spamassassin -L -t`, one process a
# message, never does. Messages already answered are skipped; answers that fail are not
# written, so a second run fills the gaps.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
out=$here/target/sa-compat
port=${SA_COMPAT_PORT:-7830}
sets=("$@")
[ ${#sets[@]} -gt 0 ] || sets=(easy-ham-1 hard-ham-1 spam-1 easy-ham-2 spam-2)
corpus=$(bash "$here/scripts/fetch-corpus.sh")
command -v spamd >/dev/null || apt-get install -y spamd >/dev/null
mkdir -p "$out"
pidfile=$(mktemp)
spamd -L -x -d -p "$port" -m 2 --min-spare=1 --max-spare=2 --max-conn-per-child=1 \
    -u nobody -r "$pidfile" 2>/dev/null
trap 'kill "$(cat "$pidfile")" 2>/dev/null; rm -f "$pidfile"' EXIT
for _ in $(seq 60); do spamc -p "$port" -K >/dev/null 2>&1 && break; sleep 1; done
one() {
    set -o pipefail
    f=$1; name=$(basename "$(dirname "$f")")__$(basename "$f"); dest=$OUT/$name
    [ -s "$dest" ] && return 0
    # A leading mbox "From " line is not a header field (sa_compat strips it too).
    if head -c 5 "$f" | grep -q '^From '; then tail -n +2 "$f"; else cat "$f"; fi |
        spamc -p "$PORT" -s 100000000 |
        awk '/^X-Spam-Status:/ {s = $0; inside = 1; next}
             inside && /^[ \t]/ {sub(/^[ \t]+/, ""); s = s " " $0; next}
             inside {exit}
             END {printf "%s", s}' > "$dest.tmp" &&
        [ -s "$dest.tmp" ] && mv "$dest.tmp" "$dest" || rm -f "$dest.tmp"
}
export -f one
export OUT=$out PORT=$port
for s in "${sets[@]}"; do ls "$corpus/$s"/*.txt; done | xargs -P2 -n1 bash -c 'one "$0"'
echo "$(ls "$out" | wc -l) answers in $out"
