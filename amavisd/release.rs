//! `amavisd-release`: asks amavisd-rs to release (or requeue) quarantined mail, with the
//! arguments of amavisd-new's Perl tool:
//!
//! ```text
//! amavisd-release [-c FILE] [--socket PATH|HOST:PORT] mail_file [secret_id [alt_recip ...]]
//! amavisd-release [-c FILE] [--socket ...] -        # one request per line on stdin
//! ```
//!
//! The socket is `--socket`, else the `[release]` socket of the configuration `-c FILE` (as
//! `amavisd -c FILE` reads it; its unix socket before its inet one), else that of
//! `/etc/amavisd-rs/amavisd.toml` when that file exists, else `var/amavisd.sock`. Options go
//! before the mail_file: an unknown option is a usage error (exit 2), never taken for a
//! mail_id, while a secret_id after the mail_file may begin with '-' (base64url).
//!
//! `mail_file` is `[path/][prefix-]MAILID[.gz][[partition]]`, as the quarantine names it
//! (`banned-K-c5C9vr87eF`, `spam-K-c5C9vr87eF.gz`, or the bare mail_id for SQL). A second
//! argument with an `@` is a recipient (the secret is then empty). Each reply is printed on
//! stderr; the exit status is 0 when every reply is 2xx. Invoked as `amavisd-requeue` (or
//! `--requeue`) it requeues; as `amavisd-report` (or `--report`) it sends an abuse report.

use amavisd::config::Config;
use amavisd::release::Attrs;
use amavisd::release::ampdp::{encode_value, parse_line};
use clap::Parser;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Parser)]
#[command(
    name = "amavisd-release",
    version,
    about = "Release mail from the amavisd-rs quarantine"
)]
struct Args {
    /// Configuration file of the daemon, whose [release] socket to use.
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
    /// The release socket: a unix socket path, or host:port (overrides the configuration's).
    #[arg(long)]
    socket: Option<String>,
    /// Send request=requeue (also when invoked as amavisd-requeue).
    #[arg(long)]
    requeue: bool,
    /// Send request=report: an abuse report to the recipients given (also when invoked as
    /// amavisd-report).
    #[arg(long)]
    report: bool,
    /// Who asks (Resent-From on the released mail).
    #[arg(long)]
    requested_by: Option<String>,
    /// The quarantined message: [path/][prefix-]MAILID[.gz][[partition]], or - to read
    /// "mail_file [secret_id [alt_recip ...]]" lines from stdin.
    mail_file: String,
    /// secret_id [alt_recip ...]: a secret_id may begin with '-' (base64url).
    #[arg(allow_hyphen_values = true, trailing_var_arg = true)]
    rest: Vec<String>,
}

/// The configuration read when no -c is given, if it exists (amavisd's own default).
const DEFAULT_CONFIG: &str = "/etc/amavisd-rs/amavisd.toml";

/// Where to connect: --socket, else the configuration's [release] socket, else the default.
fn socket_of(args: &Args) -> Result<String, String> {
    if let Some(s) = &args.socket {
        return Ok(s.clone());
    }
    let file = match &args.config {
        Some(f) => Some(f.clone()),
        None => Some(PathBuf::from(DEFAULT_CONFIG)).filter(|f| f.exists()),
    };
    let release = match file {
        Some(f) => {
            Config::load(&f)
                .map_err(|e| e.to_string())?
                .into_raw()
                .release
        }
        None => Config::default().release,
    };
    if !release.unix.as_os_str().is_empty() {
        Ok(release.unix.display().to_string())
    } else if !release.inet.is_empty() {
        Ok(release.inet)
    } else {
        Err("the configuration has no [release] socket (unix or inet); give --socket".into())
    }
}

/// `mail_file` -> (mail_id, quar_type, partition_tag), as the Perl tool parses it.
fn parse_mail_file(f: &str) -> Option<(String, String, Option<String>)> {
    let (f, part) = match f.strip_suffix(']').and_then(|x| x.rsplit_once('[')) {
        Some((name, p)) => (name, Some(p.to_string())),
        None => (f, None),
    };
    let (path, name) = match f.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, f),
    };
    let (name, gz) = match name.strip_suffix(".gz") {
        Some(n) => (n, true),
        None => (name, false),
    };
    // As the Perl tool: the longest prefix ending in '-' or '_' that leaves a mail_id of 12
    // to 16 characters (mail_ids contain '-' themselves); else the whole name.
    let is_id = |x: &str| {
        (12..=16).contains(&x.len())
            && x.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_+-".contains(&b))
            && x.as_bytes()[0].is_ascii_alphanumeric()
            && x.as_bytes()[x.len() - 1].is_ascii_alphanumeric()
    };
    let id = name
        .char_indices()
        .filter(|(_, c)| *c == '-' || *c == '_')
        .map(|(i, _)| &name[i + 1..])
        .find(|rest| is_id(rest))
        .unwrap_or(name);
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-=".contains(&b))
    {
        return None;
    }
    let qt = if gz {
        "Z"
    } else if path.is_some() {
        "F"
    } else {
        ""
    };
    Some((id.to_string(), qt.to_string(), part))
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

async fn ask(conn: &mut BufReader<Box<dyn Io>>, req: &Attrs) -> Result<Attrs, String> {
    let mut wire = String::new();
    for (n, v) in &req.0 {
        wire.push_str(&format!("{n}={}\r\n", encode_value(v)));
    }
    wire.push_str("\r\n");
    conn.get_mut()
        .write_all(wire.as_bytes())
        .await
        .map_err(|e| format!("cannot send the request: {e}"))?;
    let mut out = Attrs::default();
    let mut line = String::new();
    loop {
        line.clear();
        let n = conn
            .read_line(&mut line)
            .await
            .map_err(|e| format!("cannot read the answer: {e}"))?;
        if n == 0 || line.trim_end().is_empty() {
            break;
        }
        if let Some(kv) = parse_line(&line) {
            out.0.push(kv);
        }
    }
    if out.0.is_empty() {
        return Err("invalid (empty) answer".into());
    }
    Ok(out)
}

fn request(fields: &[String], kind: &str, by: Option<&str>) -> Result<Attrs, String> {
    let Some((file, rest)) = fields.split_first() else {
        return Err("no mail_file".into());
    };
    let (mail_id, qt, part) =
        parse_mail_file(file).ok_or_else(|| format!("invalid quarantine ID: {file}"))?;
    let (secret, rcpts) = match rest.split_first() {
        Some((s, r)) if !s.contains('@') => (s.clone(), r.to_vec()),
        _ => (String::new(), rest.to_vec()),
    };
    let mut a = Attrs::default();
    a.push("request", kind);
    a.push("mail_id", mail_id);
    if !qt.is_empty() {
        a.push("quar_type", qt);
    }
    if !secret.is_empty() {
        a.push("secret_id", secret);
    }
    a.push("mail_file", file.clone());
    if let Some(p) = part {
        a.push("partition_tag", p);
    }
    if let Some(b) = by {
        a.push("requested_by", b);
    }
    for r in rcpts {
        a.push("recipient", r);
    }
    Ok(a)
}

async fn run(args: Args) -> Result<bool, String> {
    let argv0 = std::env::args().next().unwrap_or_default();
    let kind = if args.report || argv0.ends_with("report") {
        "report"
    } else if args.requeue || argv0.ends_with("requeue") {
        "requeue"
    } else {
        "release"
    };
    let socket = socket_of(&args)?;
    let stream: Box<dyn Io> = if socket.starts_with('/') || !socket.contains(':') {
        Box::new(
            tokio::net::UnixStream::connect(&socket)
                .await
                .map_err(|e| format!("cannot connect to {socket}: {e}"))?,
        )
    } else {
        Box::new(
            tokio::net::TcpStream::connect(&socket)
                .await
                .map_err(|e| format!("cannot connect to {socket}: {e}"))?,
        )
    };
    let mut conn = BufReader::new(stream);
    let lines: Vec<Vec<String>> = if args.mail_file == "-" {
        std::io::stdin()
            .lock()
            .lines()
            .map_while(Result::ok)
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect()
    } else {
        let mut fields = vec![args.mail_file.clone()];
        fields.extend(args.rest.iter().cloned());
        vec![fields]
    };
    let mut all_ok = true;
    for fields in lines {
        let req = request(&fields, kind, args.requested_by.as_deref())?;
        let ans = ask(&mut conn, &req).await?;
        for r in ans.all("setreply") {
            eprintln!("{r}");
            all_ok &= r.starts_with('2');
        }
    }
    Ok(all_ok)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("amavisd-release: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("amavisd-release: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_options_and_secrets_may_start_with_a_dash() {
        let a =
            Args::try_parse_from(["amavisd-release", "-c", "x.toml", "abcDEF123456", "-sEcr3t"])
                .unwrap();
        assert_eq!(a.config, Some(PathBuf::from("x.toml")));
        assert_eq!(a.mail_file, "abcDEF123456");
        assert_eq!(a.rest, ["-sEcr3t"]);
        let a = Args::try_parse_from(["amavisd-release", "--socket", "/s", "-"]).unwrap();
        assert_eq!(
            (a.socket.as_deref(), a.mail_file.as_str()),
            (Some("/s"), "-")
        );
        for bad in [
            &["amavisd-release", "--bogus", "abcDEF123456"][..],
            &["amavisd-release", "-x", "abcDEF123456"],
            &["amavisd-release", "-c"],
            &["amavisd-release"],
        ] {
            let e = Args::try_parse_from(bad).err().expect("a usage error");
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn mail_file_names() {
        let p = parse_mail_file;
        assert_eq!(
            p("banned-K-c5C9vr87eF"),
            Some(("K-c5C9vr87eF".into(), String::new(), None))
        );
        assert_eq!(
            p("spam-abcDEF123456.gz"),
            Some(("abcDEF123456".into(), "Z".into(), None))
        );
        assert_eq!(
            p("q/virus-abcDEF123456[3]"),
            Some(("abcDEF123456".into(), "F".into(), Some("3".into())))
        );
        assert_eq!(p("abcDEF123456").unwrap().0, "abcDEF123456");
    }
}
