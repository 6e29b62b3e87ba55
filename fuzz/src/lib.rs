//! What every fuzz target runs: one decoder path on arbitrary bytes, with small limits.

use amavisd::decode::{FUZZ_SIGNATURES, Limits, decode_file};

fn limits() -> Limits {
    Limits {
        max_expansion_quota: 16 << 20,
        min_expansion_quota: 16 << 20,
        max_part_size: 8 << 20,
        time_budget_ms: 2000,
        ..Default::default()
    }
}

/// libfuzzer-sys aborts on any panic, even one the decoder catches on purpose (a crashing
/// third-party reader makes its part undecipherable); uncaught panics still abort.
pub fn init() {
    let _ = std::panic::take_hook();
}

/// The format with signature `FUZZ_SIGNATURES[index]`, its signature put before `data`.
pub fn format(index: usize, data: &[u8]) {
    let mut bytes = FUZZ_SIGNATURES[index].to_vec();
    bytes.extend_from_slice(data);
    let _ = decode_file("f.bin", &bytes, &limits(), &std::env::temp_dir());
}

/// tar: the input with "ustar" written at offset 257, where detection looks for it.
pub fn tar(data: &[u8]) {
    if data.len() > 262 {
        let mut t = data.to_vec();
        t[257..262].copy_from_slice(b"ustar");
        let _ = decode_file("f.tar", &t, &limits(), &std::env::temp_dir());
    }
}

/// The configuration loader on arbitrary text: an answer (a config or an error naming the
/// key and reason), never a panic.
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = amavisd::config::Config::from_toml(std::path::Path::new("fuzz.toml"), text);
    }
}

/// One AM.PDP request line (`name=value`, %-encoded), as the release server reads it.
pub fn ampdp(data: &[u8]) {
    if let Ok(line) = std::str::from_utf8(data) {
        let _ = amavisd::release::ampdp::parse_line(line);
    }
}

/// One SMTP/LMTP command line (CRLF removed), as a session parses it.
pub fn smtp_command(data: &[u8]) {
    let _ = amavisd::smtp_in::parse_command(data);
}

/// One spamc request as the spamd listener reads it: the head up to its empty line (at most
/// `MAX_HEAD` bytes, as the listener reads), then the answer written for the rest as the
/// message, with a made-up result (the answer's writer must take any message and any hits).
pub fn spamd(data: &[u8]) {
    use amavisd::spam::scan::{Hit, Outcome};
    use amavisd::spam::spamd::protocol;
    let limit = data.len().min(protocol::MAX_HEAD);
    let Some(end) = protocol::head_end(&data[..limit]) else {
        return;
    };
    let Ok(req) = protocol::parse_head(&data[..end]) else {
        return;
    };
    let _ = req.tell_class();
    let _ = req.tells("set") || req.tells("remove");
    let message = &data[end..];
    let outcome = Outcome {
        score: f64::from(data[0]) - 100.0,
        required: 5.0,
        hits: vec![Hit {
            name: String::from_utf8_lossy(&data[..end.min(16)]).into_owned(),
            score: 1.0,
            count: 1,
            describe: String::new(),
        }],
        ..Outcome::default()
    };
    let _ = protocol::answer(req.verb, &outcome, message);
}

/// A stream of milter packets as a session reads them: cut one after the other and decoded
/// until the first error; each command's answer encoded, as the session would.
pub fn milter(data: &[u8]) {
    use amavisd::milter::protocol::{self, Command, Response};
    let mut rest = data;
    while let Ok(Some((command, body, used))) = protocol::cut(rest) {
        match protocol::decode(command, body) {
            Ok(Command::OptNeg {
                version,
                actions,
                protocol,
            }) => {
                if let Some(r) = protocol::negotiate(version, actions, protocol) {
                    let _ = r.encode();
                }
            }
            Ok(Command::Header { name, value }) => {
                let _ = Response::ChangeHeader {
                    index: 1,
                    name: String::from_utf8_lossy(&name).into_owned(),
                    value,
                }
                .encode();
            }
            Ok(_) => {}
            Err(_) => return,
        }
        rest = &rest[used..];
    }
}

/// One client connection's bytes, served by the rspamd-protocol listener's own code (hyper's
/// framing, our routing, request headers, passwords, bodies, zstd and the JSON replies) with a
/// scanner that answers at once; the client's side is closed after the bytes, so every
/// path ends at the input's end.
pub fn http(data: &[u8]) {
    use std::sync::{Arc, OnceLock};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    static RT: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    let Some(rt) = RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .ok()
    }) else {
        return;
    };
    let settings = amavisd::http::Settings {
        timeout: std::time::Duration::from_secs(5),
        policy_bank: String::new(),
        authenticated_bank: "ORIGINATING".into(),
        default_recipient: "postmaster@example.com".into(),
        password: "reader".into(),
        enable_password: "writer".into(),
        secure_ip: Vec::new(),
        tempdir: std::env::temp_dir(),
        memory_spool_limit: 1 << 20,
        header_size_limit: 64 << 10,
        message_size_limit: 1 << 20,
    };
    rt.block_on(async {
        let (client, server) = tokio::io::duplex(64 << 10);
        let (mut rd, mut wr) = tokio::io::split(client);
        let peer = std::net::SocketAddr::from(([192, 0, 2, 1], 40000));
        let serve = amavisd::http::serve_connection(server, peer, settings, Arc::new(Fake));
        let write = async {
            let _ = wr.write_all(data).await;
            let _ = wr.shutdown().await;
        };
        let read = async {
            let mut out = Vec::new();
            let _ = rd.read_to_end(&mut out).await;
        };
        tokio::join!(serve, write, read);
    });
}

/// A scanner that judges by the envelope alone: spam with a subject change for the first
/// recipient, another removed, so that every part of the reply is built.
struct Fake;

impl amavisd::http::Scanner for Fake {
    async fn advise(
        &self,
        env: amavisd::message::Envelope,
        spool: amavisd::message::Spool,
        _opts: &amavisd::message::screen::ScreenOptions,
    ) -> amavisd::message::screen::Advice {
        use amavisd::message::header_edit::FieldChange;
        use amavisd::message::screen::{Advice, Answer, Findings, Screened};
        let first = env.recipients.first().map(|r| r.address.clone()).unwrap_or_default();
        Advice {
            screened: Screened {
                am_id: "1-01".into(),
                answer: Answer::Accept,
                remove: env.recipients.iter().skip(1).map(|r| format!("<{}>", r.address)).collect(),
                changes: vec![
                    FieldChange::Insert {
                        index: 0,
                        name: "X-Env-From".into(),
                        value: env.mail_from.into_bytes(),
                    },
                    FieldChange::Replace {
                        index: 1,
                        name: "Subject".into(),
                        value: spool.header_field("Subject").unwrap_or_default().into_bytes(),
                    },
                ],
                hold: None,
            },
            findings: Some(Findings {
                category: amavisd::message::Category::Spam,
                spam: None,
                descriptions: Vec::new(),
                kill_level: 6.9,
                viruses: Vec::new(),
                banned: Vec::new(),
                unchecked: Vec::new(),
                bad_header: Vec::new(),
                urls: Vec::new(),
                emails: Vec::new(),
                message_id: spool.header_field("Message-ID"),
                refusal: None,
            }),
        }
    }

    async fn learn(
        &self,
        _user: Option<&str>,
        _class: amavisd::spam::Class,
        message: Vec<u8>,
    ) -> Result<amavisd::spam::Learned, amavisd::spam::LearnError> {
        Ok(if message.len() % 2 == 0 {
            amavisd::spam::Learned::New
        } else {
            amavisd::spam::Learned::Unchanged
        })
    }

    fn has_policy_bank(&self, name: &str) -> bool {
        name == "ORIGINATING"
    }
}

/// `Received` fields, one a line, as the spam engine's view reads them: each field alone
/// (with what it signals to the walk), then all of them as one message's relays.
pub fn received(data: &[u8]) {
    use amavisd::spam::view::received::parse_received_line_with_signal;
    use amavisd::spam::view::relays::Relays;
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        let _ = parse_received_line_with_signal(line);
    }
    let relays = Relays::from_received(text.lines());
    let _ = relays.pseudo_header("X-Spam-Relays-External");
}

/// The attachment readers (`amavisd::extract`) on arbitrary bytes, chosen by the first
/// byte: PDF, Office zip, compound file, QR image, RTF. Called without the panic guard
/// `extract::extract` puts around them, so that a panic is found rather than hidden.
pub fn extract(data: &[u8]) {
    use amavisd::extract::{Limits, ole, ooxml, pdf, qr, rtf};
    let limits = Limits {
        max_inflated: 4 << 20,
        max_text: 64 << 10,
        max_pixels: 1 << 20,
        ..Limits::default()
    };
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => drop(pdf::extract(rest, &limits)),
        1 => drop(ooxml::extract(rest, &limits)),
        2 => drop(ole::extract(rest, &limits)),
        3 => drop(qr::decode(rest, &limits)),
        _ => drop(rtf::extract(rest, &limits)),
    }
}
