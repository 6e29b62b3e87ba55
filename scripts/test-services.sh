#!/usr/bin/env bash
# Starts the servers the test suite talks to, on loopback, and installs them from Debian's
# packages when missing. Safe to run again: a server that already answers is left alone.
#
#   postgres   PostgreSQL  127.0.0.1:5432  user postgres, trust authentication, database "test"
#   mariadb    MariaDB     127.0.0.1:3306  user root, no password, database "test"
#   redis      Redis       127.0.0.1:6379
#   clamd      clamd on a test signature database (scripts/clamd-test-db.sh); prints its socket
#   nsd        NSD, the authoritative DNS server the network-check tests start on a free
#              loopback port with the zones they write (testing/src/nsd.rs); installed here,
#              checked to start, and its own system service kept off
#
# Usage: scripts/test-services.sh [postgres] [mariadb] [redis] [clamd] [nsd]   (none: all five)
#
# This changes the host: it makes PostgreSQL trust every local connection and gives MariaDB's
# root an empty password. Run it on a test machine, never on a production server.
# Needs root. Exits non-zero, naming the server, when one does not come up.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export DEBIAN_FRONTEND=noninteractive

servers=("$@")
((${#servers[@]})) || servers=(postgres mariadb redis clamd nsd)

fail() { echo "test-services: $*" >&2; exit 1; }

# Debian packages for the servers asked for that are not installed yet.
missing=()
for s in "${servers[@]}"; do
  case $s in
    postgres) command -v pg_ctlcluster >/dev/null || missing+=(postgresql) ;;
    mariadb) command -v mariadbd >/dev/null || missing+=(mariadb-server) ;;
    redis) command -v redis-server >/dev/null || missing+=(redis-server) ;;
    clamd)
      command -v clamd >/dev/null || missing+=(clamav-daemon)
      [[ -f /usr/share/clamav-testfiles/clam.exe ]] || missing+=(clamav-testfiles)
      ;;
    nsd) command -v nsd >/dev/null || missing+=(nsd) ;;
    *) echo "usage: $0 [postgres] [mariadb] [redis] [clamd] [nsd]" >&2; exit 2 ;;
  esac
done
if ((${#missing[@]})); then
  echo "test-services: installing ${missing[*]}" >&2
  apt-get update -qq >/dev/null
  # The packages' own services must not start at install time: we start them below, our way.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi

# True once something accepts TCP connections on 127.0.0.1:$1.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits up to 20 s for port $2; fails naming server $1.
await_port() {
  local i
  for i in $(seq 100); do listening "$2" && return 0; sleep 0.2; done
  fail "$1 did not come up on 127.0.0.1:$2"
}

start_postgres() {
  local version hba
  version=$(ls /etc/postgresql | sort -n | tail -1)
  [[ -n $version ]] || fail "postgres: no cluster under /etc/postgresql"
  hba=/etc/postgresql/$version/main/pg_hba.conf
  # Trust on loopback and the local socket: the tests connect as postgres without a password.
  if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    sed -i -E 's/^(local|host)(.*)(peer|md5|scram-sha-256)$/\1\2trust/' "$hba"
    printf 'host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' >> "$hba"
  fi
  if pg_ctlcluster "$version" main status >/dev/null 2>&1; then
    pg_ctlcluster "$version" main reload
  else
    pg_ctlcluster "$version" main start
  fi
  await_port postgres 5432
  if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
    psql -h 127.0.0.1 -U postgres -qc 'CREATE DATABASE test'
  fi
  echo "postgres: 127.0.0.1:5432 user postgres db test"
}

start_mariadb() {
  if ! listening 3306; then
    install -d -o mysql -g mysql /run/mysqld
    [[ -d /var/lib/mysql/mysql ]] || mariadb-install-db --user=mysql >/dev/null
    (setsid mariadbd-safe --bind-address=127.0.0.1 --port=3306 >/dev/null 2>&1 &)
  fi
  await_port mariadb 3306
  local i
  for i in $(seq 50); do mariadb -uroot -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.2; done
  # root without a password, over the socket and over TCP from 127.0.0.1.
  mariadb -uroot <<'SQL'
CREATE DATABASE IF NOT EXISTS test;
ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('');
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
FLUSH PRIVILEGES;
SQL
  mariadb -h 127.0.0.1 -P 3306 -uroot -e 'SELECT 1' test >/dev/null || fail "mariadb: root cannot log in over TCP"
  echo "mariadb: 127.0.0.1:3306 user root db test"
}

start_redis() {
  listening 6379 || redis-server --bind 127.0.0.1 --port 6379 --daemonize yes >/dev/null
  await_port redis 6379
  echo "redis: 127.0.0.1:6379"
}

# The tests run their own NSDs; the package's service (port 53 on every address) stays off.
# Here: one NSD started on a free loopback port with a tiny zone and stopped, to prove it runs.
check_nsd() {
  systemctl disable --now nsd >/dev/null 2>&1 || true
  local dir port i up= log
  # A port free for both UDP and TCP (NSD binds both); another program may still take it
  # before NSD does, so a failed start is tried again on another port.
  local attempt
  for attempt in 1 2 3 4 5; do
  port=$(python3 -c 'import socket
t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", p)); print(p)' 2>/dev/null) || continue
  dir=$(mktemp -d)
  printf '$TTL 60\n@ IN SOA ns.test. h.test. 1 60 60 60 60\n@ IN NS ns.test.\nns IN A 127.0.0.1\n' > "$dir/test.zone"
  printf '%s\n' "server:" "  ip-address: 127.0.0.1@$port" '  username: ""' '  chroot: ""' \
    "  zonesdir: \"$dir\"" "  zonelistfile: \"$dir/zone.list\"" '  database: ""' \
    "  pidfile: \"$dir/nsd.pid\"" "  xfrdfile: \"$dir/xfrd.state\"" "  xfrdir: \"$dir\"" \
    "  logfile: \"$dir/nsd.log\"" "remote-control:" "  control-enable: no" \
    "zone:" '  name: "test"' '  zonefile: "test.zone"' > "$dir/nsd.conf"
  if ! nsd -c "$dir/nsd.conf"; then
    log=$(cat "$dir/nsd.log" 2>/dev/null); rm -rf "$dir"
    [[ $attempt -lt 5 ]] && continue
    fail "nsd: does not start: $log"
  fi
  for i in $(seq 50); do [[ -s $dir/nsd.pid ]] && up=1 && break; sleep 0.1; done
  [[ -n $up ]] && kill "$(cat "$dir/nsd.pid")" 2>/dev/null
  rm -rf "$dir"
  break
  done
  [[ -n $up ]] || fail "nsd: did not come up on 127.0.0.1:$port"
  echo "nsd: $(nsd -v 2>&1 | head -1) (the tests start their own)"
}

for s in "${servers[@]}"; do
  case $s in
    nsd) check_nsd ;;
    postgres) start_postgres ;;
    mariadb) start_mariadb ;;
    redis) start_redis ;;
    clamd) echo "clamd: $(bash "$here/clamd-test-db.sh" start)" ;;
  esac
done
