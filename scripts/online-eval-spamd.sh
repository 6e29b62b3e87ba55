#!/bin/bash
# SpamAssassin's side of the online evaluation (issue 24, point 3): the same messages in the
# same order as `AMAVISD_CV_ONLINE=1 cargo run --release --example bayes_cv` (which writes
# target/online-order.txt), each checked by spamd (Debian's SpamAssassin, network tests off,
# a fresh Bayes store, no autolearn) and then taught its true class with TELL (`spamc -L`),
# as a user's reports would. Prints recall and false positives at 5.0 and (1-ROCA)%.
#
#   bash scripts/online-eval-spamd.sh [LIMIT]     (LIMIT: the first N messages only)
#
# Takes about 0.3 s a message on 2 cores (25-30 minutes for the 6,046).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
order=$here/target/online-order.txt
[ -s "$order" ] || { echo "no $order: run AMAVISD_CV_ONLINE=1 cargo run --release --example bayes_cv first" >&2; exit 1; }
command -v spamd >/dev/null || { echo "spamd is missing (apt-get install spamd)" >&2; exit 1; }
corpus=$(bash "$here/scripts/fetch-corpus.sh" | tail -1)
limit=${1:-0}
dir=$(mktemp -d /tmp/online-spamd.XXXXXX)
port=17830
# spamd's children run as nobody: they must read the site folder.
chmod 755 "$dir"
mkdir -p "$dir/site" "$dir/bayes"
cp /etc/spamassassin/*.pre /etc/spamassassin/65_debian.cf "$dir/site/"
cat > "$dir/site/local.cf" <<CF
required_score 5.0
use_bayes 1
bayes_auto_learn 0
bayes_path $dir/bayes/bayes
bayes_file_mode 0777
CF
chown -R nobody "$dir/bayes"
spamd -L -u nobody --allow-tell -i 127.0.0.1 -p $port --siteconfigpath "$dir/site" \
    -s "$dir/spamd.log" -m 2 --pidfile "$dir/spamd.pid" -d
for _ in $(seq 1 100); do spamc -p $port -K >/dev/null 2>&1 && break; sleep 0.3; done
trap 'kill "$(cat "$dir/spamd.pid")" 2>/dev/null || true' EXIT
n=0
: > "$dir/scores"
while read -r name class; do
    n=$((n + 1)); [ "$limit" -gt 0 ] && [ $n -gt "$limit" ] && break
    f=$corpus/$name
    score=$(spamc -p $port -c < "$f" | cut -d/ -f1 || true)
    echo "$score $class" >> "$dir/scores"
    spamc -p $port -L "$class" < "$f" >/dev/null || true
done < "$order"
python3 - "$dir/scores" <<'PY'
import sys
rows = [(float(s), c == "spam") for s, c in (l.split() for l in open(sys.argv[1])) if s]
ham = [s for s, spam in rows if not spam]; spam = [s for s, is_spam in rows if is_spam]
fp = sum(s >= 5.0 for s in ham); caught = sum(s >= 5.0 for s in spam)
# ROC area: the chance a spam scores above a ham (ties half).
hs = sorted(ham); import bisect
area = sum(bisect.bisect_left(hs, s) + 0.5 * (bisect.bisect_right(hs, s) - bisect.bisect_left(hs, s)) for s in spam) / max(1, len(ham) * len(spam))
print(f"spamd + TELL, {len(rows)} messages in time order: false positives {fp} of {len(ham)} "
      f"({100*fp/max(1, len(ham)):.2f} %), spam recall {caught} of {len(spam)} ({100*caught/max(1, len(spam)):.2f} %), "
      f"(1-ROCA)% {100*(1-area):.4f}")
PY
