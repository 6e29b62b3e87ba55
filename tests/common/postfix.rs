//! A private Postfix instance for the end-to-end tests (Debian `postfix`, which `.ci/run`
//! installs): its own queue, configuration and log below a temporary folder, on loopback
//! ports. The test fails, never skips, when Postfix is missing.

use std::path::Path;
use std::process::Command;

const POSTFIX: &str = "/usr/sbin/postfix";

/// The master.cf services every instance needs, without the smtpd listener.
const SERVICES: &str = "pickup unix n - n 60 1 pickup\n\
     cleanup unix n - n - 0 cleanup\n\
     qmgr unix n - n 300 1 qmgr\n\
     rewrite unix - - n - - trivial-rewrite\n\
     bounce unix - - n - 0 bounce\n\
     defer unix - - n - 0 bounce\n\
     trace unix - - n - 0 bounce\n\
     verify unix - - n - 1 verify\n\
     flush unix n - n 1000? 0 flush\n\
     proxymap unix - - n - - proxymap\n\
     smtp unix - - n - - smtp\n\
     relay unix - - n - - smtp\n\
     showq unix n - n - - showq\n\
     error unix - - n - - error\n\
     retry unix - - n - - error\n\
     discard unix - - n - - discard\n\
     anvil unix - - n - 1 anvil\n\
     scache unix - - n - 1 scache\n\
     postlog unix-dgram n - n - 1 postlogd\n";

/// A private Postfix instance; stopped when dropped.
pub struct Postfix {
    dir: tempfile::TempDir,
}

impl Postfix {
    pub fn conf(&self) -> std::path::PathBuf {
        self.dir.path().join("etc")
    }

    /// Starts Postfix with smtpd on `smtpd_port`, relaying example.com to the sink on
    /// `sink_port`, with `main_extra` appended to main.cf and `master_extra` to master.cf.
    pub fn start(smtpd_port: u16, sink_port: u16, main_extra: &str, master_extra: &str) -> Postfix {
        assert!(
            Path::new(POSTFIX).exists(),
            "Postfix is not installed: apt-get install postfix (the .ci/run script does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // Postfix's daemons run as the postfix user and must reach the queue below here. The
        // queue directory must exist; Postfix creates its subdirectories and data_directory
        // itself, with the owners it wants.
        std::fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let etc = root.join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::create_dir_all(root.join("queue")).unwrap();
        let main = format!(
            "compatibility_level = 3.6\n\
             queue_directory = {q}\n\
             data_directory = {d}\n\
             maillog_file = {r}/maillog\n\
             maillog_file_prefixes = {r}\n\
             meta_directory = /etc/postfix\n\
             mail_owner = postfix\n\
             setgid_group = postdrop\n\
             myhostname = postfix.test\n\
             mydomain = test\n\
             mydestination =\n\
             relay_domains = example.com\n\
             mynetworks = 127.0.0.0/8\n\
             inet_interfaces = 127.0.0.1\n\
             inet_protocols = ipv4\n\
             smtpd_relay_restrictions = permit_mynetworks, reject\n\
             default_transport = smtp:[127.0.0.1]:{sink_port}\n\
             relay_transport = smtp:[127.0.0.1]:{sink_port}\n\
             smtp_dns_support_level = disabled\n\
             alias_maps =\n\
             alias_database =\n\
             biff = no\n\
             {main_extra}\n",
            q = root.join("queue").display(),
            d = root.join("data").display(),
            r = root.display(),
        );
        let master =
            format!("127.0.0.1:{smtpd_port} inet n - n - - smtpd\n{SERVICES}{master_extra}");
        std::fs::write(etc.join("main.cf"), main).unwrap();
        std::fs::write(etc.join("master.cf"), master).unwrap();
        let pf = Postfix { dir };
        let out = pf.command("start");
        assert!(out.status.success(), "postfix start failed: {}", text(&out));
        pf
    }

    fn command(&self, what: &str) -> std::process::Output {
        Command::new(POSTFIX)
            .arg("-c")
            .arg(self.conf())
            .arg(what)
            .output()
            .unwrap()
    }

    pub fn maillog(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    /// What `postqueue -p` lists for this instance (empty queue: "Mail queue is empty").
    pub fn queue(&self) -> String {
        let out = Command::new("/usr/sbin/postqueue")
            .arg("-c")
            .arg(self.conf())
            .arg("-p")
            .output()
            .unwrap();
        text(&out)
    }
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = self.command("stop");
    }
}
