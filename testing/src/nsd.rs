//! A real authoritative DNS server for the network-check tests: Debian's NSD, started on a
//! free loopback port with the zones a test writes, stopped when dropped. Queries for names
//! outside the zones are refused, so nothing a test asks ever leaves the host.
//!
//! `scripts/test-services.sh nsd` installs the package; a test that cannot start it fails.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One running NSD.
pub struct Nsd {
    child: Child,
    /// Where it answers, UDP and TCP.
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

/// One zone: its apex (`zen.spamhaus.org`) and its records, one per line, names relative to
/// the apex (`2.0.0.127 A 127.0.0.2`) or absolute with a final dot. SOA and NS are added.
pub struct Zone<'a> {
    pub apex: &'a str,
    pub records: &'a str,
}

impl Nsd {
    /// Starts NSD serving `zones`, and waits until it answers.
    pub fn start(zones: &[Zone<'_>]) -> io::Result<Nsd> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let mut conf = format!(
            "server:\n  ip-address: 127.0.0.1@{port}\n  port: {port}\n  username: \"\"\n  chroot: \"\"\n  \
             zonesdir: \"{d}\"\n  zonelistfile: \"{d}/zone.list\"\n  database: \"\"\n  \
             pidfile: \"{d}/nsd.pid\"\n  xfrdfile: \"{d}/xfrd.state\"\n  xfrdir: \"{d}\"\n  \
             logfile: \"{d}/nsd.log\"\n  server-count: 1\n  verbosity: 1\n  hide-version: yes\n  rrl-ratelimit: 0\n\
             remote-control:\n  control-enable: no\n",
            d = dir.path().display()
        );
        for z in zones {
            let file = format!("{}.zone", z.apex);
            std::fs::write(dir.path().join(&file), zone_text(z))?;
            conf.push_str(&format!(
                "zone:\n  name: \"{}\"\n  zonefile: \"{file}\"\n",
                z.apex
            ));
        }
        let conf_path = dir.path().join("nsd.conf");
        std::fs::write(&conf_path, conf)?;
        let child = spawn(&conf_path)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut nsd = Nsd {
            child,
            addr,
            _dir: dir,
        };
        nsd.await_answer(zones.first().map_or("localhost", |z| z.apex))?;
        Ok(nsd)
    }

    /// `127.0.0.1:PORT`, as `[dns] servers` and SpamAssassin's `dns_server` take it.
    pub fn server(&self) -> String {
        self.addr.to_string()
    }

    /// Waits up to 20 s for an answer to an SOA query for `apex`.
    fn await_answer(&mut self, apex: &str) -> io::Result<()> {
        let sock = UdpSocket::bind("127.0.0.1:0")?;
        sock.set_read_timeout(Some(Duration::from_millis(200)))?;
        let query = soa_query(apex);
        let until = Instant::now() + Duration::from_secs(20);
        let mut buf = [0u8; 1500];
        while Instant::now() < until {
            if let Some(status) = self.child.try_wait()? {
                let log =
                    std::fs::read_to_string(self._dir.path().join("nsd.log")).unwrap_or_default();
                return Err(io::Error::other(format!("nsd exited ({status}): {log}")));
            }
            sock.send_to(&query, self.addr)?;
            if let Ok((n, _)) = sock.recv_from(&mut buf)
                && n >= 12
                && buf[..2] == query[..2]
            {
                return Ok(());
            }
        }
        Err(io::Error::other(format!(
            "nsd did not answer on {}",
            self.addr
        )))
    }
}

impl Drop for Nsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(conf: &Path) -> io::Result<Child> {
    Command::new("nsd")
        .arg("-d")
        .arg("-c")
        .arg(conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot start nsd ({e}): run scripts/test-services.sh nsd"),
            )
        })
}

/// A port free for both UDP and TCP on 127.0.0.1 when asked.
fn free_port() -> io::Result<u16> {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0")?;
        let port = udp.local_addr()?.port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(io::Error::other("no free port for nsd"))
}

fn zone_text(z: &Zone<'_>) -> String {
    format!(
        "$ORIGIN {apex}.\n$TTL 300\n@ IN SOA ns.{apex}. hostmaster.{apex}. 1 3600 600 86400 60\n\
         @ IN NS ns.{apex}.\nns IN A 127.0.0.1\n{}\n",
        z.records,
        apex = z.apex
    )
}

/// A DNS query packet: id 0x4242, recursion desired, `name` SOA IN.
fn soa_query(name: &str) -> Vec<u8> {
    let mut q = vec![0x42, 0x42, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 6, 0, 1]);
    q
}
