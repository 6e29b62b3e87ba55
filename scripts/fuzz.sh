#!/usr/bin/env bash
# Runs the fuzz targets in fuzz/ with libFuzzer for SECONDS each, seeded from the test
# fixtures, real mail and ClamAV's test files, on the stable toolchain and without
# cargo-fuzz: the build passes the same coverage flags cargo-fuzz would (`-s none`).
# Fails when a target crashes, hangs past -timeout or leaks; the input that did it is in
# fuzz/artifacts/TARGET/. Prints one line per target: runs, coverage, corpus size.
#
# Usage: scripts/fuzz.sh SECONDS [TARGET...]     (no TARGET: all of them)
#   .ci/run: FUZZ_SEED=1 scripts/fuzz.sh 5        (a smoke run of every target)
#   campaign: scripts/fuzz.sh 600 mime zip ...    (README, "Fuzzing")
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}
shift
targets=("$@")
if ((${#targets[@]} == 0)); then
  mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^amavisd-rs-fuzz$')
fi

triple=$(rustc -vV | sed -n 's/^host: //p')
# cargo-fuzz's flags for a build without a sanitizer; --target keeps them off build scripts.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
echo "== fuzz: building ${#targets[@]} targets"
bins=()
for t in "${targets[@]}"; do bins+=(--bin "$t"); done
cargo build --locked --release --target "$triple" "${bins[@]}" 2>&1 | tail -1

seed() { # seed TARGET DIR: copies the seeds for TARGET into DIR (once; the corpus grows)
  python3 - "$1" "$2" <<'EOF'
import glob, os, sys
target, out = sys.argv[1], sys.argv[2]
tf = "/usr/share/clamav-testfiles/"
mail = glob.glob("../tests/fixtures/**/*.eml", recursive=True) + \
    glob.glob("/usr/share/doc/spamassassin/examples/sample-*.txt") + [tf + "clam.mail"]
# Each format target puts its signature in front of the input (fuzz/src/lib.rs): the seed
# is the file without it.
formats = {
    "zip": (b"PK\x03\x04", ["clam.zip", "clam.impl.zip", "clam.bz2.zip"]),
    "gzip": (b"\x1f\x8b\x08", ["clam.tar.gz", "clam_cache_emax.tgz"]),
    "bzip2": (b"BZh9", ["clam.exe.bz2"]),
    "xz": (b"\xfd7zXZ\x00", []), "lzma": (b"\x5d\x00\x00", []),
    "cpio": (b"070701", ["clam.newc.cpio"]), "ar": (b"!<arch>\n", []),
    "sevenz": (b"7z\xbc\xaf\x27\x1c", ["clam.7z"]), "cab": (b"MSCF\x00\x00\x00\x00", ["clam.cab"]),
    "rar5": (b"Rar!\x1a\x07\x01\x00", []), "rar4": (b"Rar!\x1a\x07\x00", ["clam.rar"]),
    "tnef": (b"\x78\x9f\x3e\x22", ["clam.tnef"]), "embedded": (b"begin 644 x\r\n", ["clam.exe.mbox.uu"]),
}
order = ["zip", "gzip", "bzip2", "xz", "cpio", "ar", "sevenz", "cab", "embedded", "rar5", "rar4", "tnef", "lzma"]
seeds = []
def read(p):
    try:
        with open(p, "rb") as f: return f.read()
    except OSError: return None
if target == "mime":
    seeds = [read(p) for p in mail]
elif target in formats:
    sig, files = formats[target]
    for name in files:
        b = read(tf + name)
        if b is not None: seeds.append(b[len(sig):] if b.startswith(sig) else b)
elif target == "tar":
    seeds = [read(p) for p in glob.glob(tf + "*.tar")]
elif target == "archive":
    for i, name in enumerate(order):
        sig, files = formats[name]
        for f in files:
            b = read(tf + f)
            if b is not None: seeds.append(bytes([i]) + (b[len(sig):] if b.startswith(sig) else b))
elif target == "extract":
    # The first byte chooses the reader: 0 PDF, 1 Office zip, 2 compound file, 3 image, 4 RTF.
    for path in [tf + "clam.pdf"] + glob.glob("/usr/share/doc/*/*.pdf")[:3]:
        b = read(path)
        if b is not None: seeds.append(b"\x00" + b)
    for path in [tf + "clam.ole.doc", tf + "clam.ppt"]:
        b = read(path)
        if b is not None: seeds.append(b"\x02" + b)
    for path in glob.glob("/usr/share/pixmaps/*.png")[:3] + glob.glob("/usr/share/doc/*/*.gif")[:2]:
        b = read(path)
        if b is not None: seeds.append(b"\x03" + b)
    b = read(tf + "clam.zip")
    if b is not None: seeds.append(b"\x01" + b)
    seeds.append(b"\x04" + rb'{\rtf1\ansi\ansicpg1251{\fonttbl{\f0 Arial;}}\f0 Hi \'cf\'f0 {\uc2\u20320\'c4\'e3}\par'
                 rb'{\field{\*\fldinst{HYPERLINK "http://x.example/"}}{\fldrslt{go}}}{\object{\*\objdata 0105}}\bin2 {}}')
elif target == "config":
    seeds = [read("../etc/amavisd.toml")]
elif target == "smtp_command":
    seeds = [l.encode() for l in ["EHLO mx.example.org", "MAIL FROM:<a@b.example> SIZE=100 BODY=8BITMIME",
             "RCPT TO:<u@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;u@example.com", "DATA",
             "XFORWARD NAME=mx.example.org ADDR=192.0.2.1 PROTO=ESMTP", "LHLO x", "RSET", "QUIT"]]
elif target == "ampdp":
    seeds = [b"request=release", b"mail_id=AbCdEf012345", b"secret_id=xyz", b"quar_type=F",
             b"recipient=%3Cu@example.com%3E"]
elif target == "received":
    seeds = [b"from mail.example.org (mx1.example.org [192.0.2.7]) by mx.local (Postfix) with ESMTP id ABC123; Mon, 1 Jan 2024 12:00:00 +0000",
             b"from host.example.net ([198.51.100.2] helo=HELLO) by x.y with esmtp (Exim 4.0) id 1abc-000X-00\nfrom unknown (HELO box) (203.0.113.9) by q.example with SMTP",
             b"from AM5PR0402MB2836.eurprd04.prod.outlook.com ([fe80::19bd:c588:dd17:5226]) by AM5PR0402MB2836.eurprd04.prod.outlook.com ([fe80::19bd:c588:dd17:5226%6]) with mapi id 15.20.1943.023",
             b"from cabbage.jmason.org [127.0.0.1] by localhost with IMAP (fetchmail-5.9.0) for jm@localhost (single-drop)",
             b"(qmail 123 invoked by uid 0); 1 Jan 2002"]
elif target == "spamd":
    seeds = [b"CHECK SPAMC/1.5\r\nContent-length: 20\r\nUser: u\r\n\r\nSubject: x\r\n\r\nbody\r\n",
             b"TELL SPAMC/1.5\r\nMessage-class: spam\r\nSet: local\r\nContent-length: 6\r\n\r\nx\r\n\r\ny",
             b"PING SPAMC/1.5\r\n\r\n", b"PROCESS SPAMC/1.2\r\nContent-length: 5\r\n\r\nhello"]
elif target == "milter":
    def pk(c, d): return len(d + b"x").to_bytes(4, "big") + c + d
    seeds = [pk(b"O", bytes([0,0,0,6, 0,0,1,255, 0,31,255,255])) + pk(b"D", b"C{daemon_name}\0ORIGINATING\0")
             + pk(b"C", b"client.example\x004\x00\x19192.0.2.1\0") + pk(b"H", b"client.example\0")
             + pk(b"M", b"<a@example.org>\0SIZE=10\0") + pk(b"R", b"<u@example.com>\0")
             + pk(b"L", b"Subject\0 hi\0") + pk(b"N", b"") + pk(b"B", b"Hello.\r\n") + pk(b"E", b"")
             + pk(b"A", b"") + pk(b"Q", b"")]
elif target == "http":
    msg = b"From: a@example.org\r\nSubject: hi\r\nMessage-ID: <m@x>\r\n\r\nHello.\r\n"
    def req(path, hs, body):
        return ("POST %s HTTP/1.1\r\nContent-Length: %d\r\n" % (path, len(body))).encode() + \
            b"".join(h + b"\r\n" for h in hs) + b"\r\n" + body
    seeds = [req("/checkv2", [b"From: <a@example.org>", b"Rcpt: u@example.com, v@example.com",
                              b"IP: 192.0.2.1", b"Helo: mx", b"Queue-Id: 4ABC", b"User: bob",
                              b"Settings-ID: ORIGINATING", b"Flags: pass_all,zstd"], msg),
             req("/check?ip=192.0.2.1&deliver-to=u%40example.com", [], msg),
             req("/learnspam", [b"Password: writer", b"Deliver-To: u@example.com"], msg),
             req("/checkv2", [b"Compression: zstd"], bytes.fromhex("28b52ffd2006310000") + b"Hello."),
             b"POST /checkv2 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHello\r\n0\r\n\r\n",
             b"GET /stat HTTP/1.0\r\nPassword: reader\r\n\r\n", b"GET /ping HTTP/1.0\r\n\r\n"]
os.makedirs(out, exist_ok=True)
for i, s in enumerate(x for x in seeds if x):
    with open(os.path.join(out, "seed-%d" % i), "wb") as f: f.write(s)
EOF
}

status=0
for t in "${targets[@]}"; do
  corpus=corpus/$t
  [[ -d $corpus ]] || seed "$t" "$corpus"
  mkdir -p "artifacts/$t"
  log=$(mktemp)
  # FUZZ_SEED fixes libFuzzer's random seed (CI: the same mutations at every run).
  if ! "target/$triple/release/$t" "$corpus" -max_total_time="$secs" -timeout=10 ${FUZZ_SEED:+-seed=$FUZZ_SEED} \
      -rss_limit_mb=2048 -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1; then
    echo "FAIL $t: $(grep -m1 -E 'ERROR|panicked|deadly signal|timeout' "$log" || tail -1 "$log")"
    tail -30 "$log" >&2
    status=1
  else
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
    echo "ok   $t: $runs runs in ${secs} s, $cov, corpus $(ls "$corpus" | wc -l) inputs"
  fi
  rm -f "$log"
done
exit $status
