#!/usr/bin/env bash
# A ClamAV signature database for the tests, since the real one cannot be downloaded here, and
# clamd started on it. The database names two files by their MD5 (ClamAV's .hdb format):
#   Eicar-Test-Signature   the 68-byte EICAR test string
#   Clamav.Test.File-6     /usr/share/clamav-testfiles/clam.exe (Debian clamav-testfiles)
# A hash signature matches a whole file only: a part is detected only when it was decoded to
# exactly those bytes, which is what the decoder tests need to prove.
#
# Usage: scripts/clamd-test-db.sh [start]
#   Writes the database and prints clamd's socket; with "start", also starts clamd when it
#   does not answer PING. Needs root and: apt-get install clamav-daemon clamav-testfiles
set -euo pipefail
db=/var/lib/clamav
payload=/usr/share/clamav-testfiles/clam.exe
[[ -f $payload ]] || { echo "clamd-test-db: $payload missing (apt-get install clamav-testfiles)" >&2; exit 1; }
mkdir -p "$db" /var/run/clamav

eicar='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
sig() { # md5 size name, from stdin
  local sum
  sum=$(md5sum | cut -d' ' -f1)
  echo "$sum:$1:$2"
}
{
  printf '%s' "$eicar" | sig "${#eicar}" Eicar-Test-Signature
  sig "$(stat -c %s "$payload")" Clamav.Test.File-6 < "$payload"
} > "$db/amavisd-rs-test.hdb.new"
mv "$db/amavisd-rs-test.hdb.new" "$db/amavisd-rs-test.hdb"
chown -R clamav:clamav "$db" /var/run/clamav 2>/dev/null || true

sock=$(sed -n 's/^LocalSocket[[:space:]]\+//p' /etc/clamav/clamd.conf 2>/dev/null)
sock=${sock:-/var/run/clamav/clamd.ctl}

# True when clamd answers PING on its socket.
answers() {
  python3 - "$sock" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(3)
s.connect(sys.argv[1])
s.sendall(b"zPING\0")
sys.exit(0 if s.recv(16).startswith(b"PONG") else 1)
PY
}

if [[ ${1:-} == start ]] && ! answers; then
  clamd >&2
  for _ in $(seq 60); do answers && break; sleep 0.5; done
  answers || { echo "clamd-test-db: clamd does not answer on $sock" >&2; exit 1; }
fi
echo "$sock"
