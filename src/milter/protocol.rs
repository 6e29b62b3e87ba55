//! The Sendmail milter protocol (version 6, as Postfix and Sendmail speak it), without I/O:
//! packets cut from a byte buffer and decoded into [`Command`]s, and our [`Response`]s encoded.
//!
//! A packet is a 4-byte big-endian length, then that many bytes: one command byte and its
//! data. Strings are NUL-terminated. Nothing here trusts the peer: a length over
//! [`MAX_PACKET`] or a command whose data does not parse is a [`ProtocolError`], never a
//! panic or an allocation the length asked for.
//!
//! We write this ourselves rather than use a crate: `indymilter` and `milter` are GPL-3.0
//! (our licence is MIT OR Apache-2.0), and `miltr-server` answers every command whatever the
//! negotiated no-reply flags, has no read timeouts and reads through a `futures-io`
//! compatibility layer; the protocol is a dozen fixed packet shapes.

use thiserror::Error;

/// The protocol version we speak (Postfix's `milter_protocol = 6`; Sendmail 8.14+).
pub const VERSION: u32 = 6;

/// Largest packet accepted. Postfix and Sendmail send body chunks of at most 64 KiB
/// (libmilter's `MILTER_CHUNK_SIZE`); a header or macro packet is bounded by the MTA's header
/// limits. libmilter itself refuses anything over 256 KiB by default; 1 MiB leaves room for
/// MTAs built with a larger chunk size.
pub const MAX_PACKET: usize = 1 << 20;

/// Actions we may ask for at negotiation (`SMFIF_*`).
pub mod action {
    pub const ADDHDRS: u32 = 0x01;
    pub const DELRCPT: u32 = 0x08;
    pub const CHGHDRS: u32 = 0x10;
    pub const QUARANTINE: u32 = 0x20;
}

/// Protocol flags (`SMFIP_*`) we use.
pub mod proto {
    /// The MTA may leave out unknown commands.
    pub const NOUNKNOWN: u32 = 0x100;
    /// The MTA may leave out the DATA command.
    pub const NODATA: u32 = 0x200;
    /// Header values keep their leading space, so the header section is rebuilt byte for byte.
    pub const HDR_LEADSPC: u32 = 0x10_0000;
    /// No reply to these commands: we decide at end of message and always say "continue"
    /// before it, so the MTA need not wait for a round trip per header field or envelope
    /// step (a header's refusal, over the size limit, is given at end of headers instead).
    pub const NR_HDR: u32 = 0x80;
    pub const NR_CONN: u32 = 0x1000;
    pub const NR_HELO: u32 = 0x2000;
    pub const NR_MAIL: u32 = 0x4000;
    pub const NR_RCPT: u32 = 0x8000;
}

impl Command {
    /// The no-reply flag that, negotiated, silences our answer to this command.
    pub fn no_reply_flag(&self) -> Option<u32> {
        match self {
            Command::Connect { .. } => Some(proto::NR_CONN),
            Command::Helo(_) => Some(proto::NR_HELO),
            Command::Mail(_) => Some(proto::NR_MAIL),
            Command::Rcpt(_) => Some(proto::NR_RCPT),
            Command::Header { .. } => Some(proto::NR_HDR),
            _ => None,
        }
    }
}

/// Why a packet was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("packet of {0} bytes is over the limit of {MAX_PACKET}")]
    TooLong(usize),
    #[error("empty packet")]
    Empty,
    #[error("malformed {command:?} packet: {why}")]
    Malformed { command: char, why: &'static str },
}

/// One command from the MTA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `O`: the MTA's version, the actions it allows and the protocol steps it can leave out.
    OptNeg {
        version: u32,
        actions: u32,
        protocol: u32,
    },
    /// `D`: macros for the stage named by `stage` (`C`onnect, `H`elo, `M`ail, `R`cpt, ...).
    Macros {
        stage: u8,
        pairs: Vec<(String, String)>,
    },
    /// `C`: the SMTP client: its host name and address (`None` for unknown or a unix socket).
    Connect {
        hostname: String,
        addr: Option<std::net::IpAddr>,
        port: u16,
    },
    /// `H`: the client's HELO/EHLO argument.
    Helo(String),
    /// `M`: MAIL FROM: the address (angle brackets as sent) then ESMTP parameters.
    Mail(Vec<String>),
    /// `R`: RCPT TO, the same shape.
    Rcpt(Vec<String>),
    /// `T`: DATA.
    Data,
    /// `L`: one header field: name and value (bytes: mail need not be UTF-8).
    Header { name: Vec<u8>, value: Vec<u8> },
    /// `N`: end of the header section.
    EndOfHeaders,
    /// `B`: a chunk of the body.
    Body(Vec<u8>),
    /// `E`: end of the message: answer now.
    EndOfMessage,
    /// `A`: the current message is abandoned; the connection stays.
    Abort,
    /// `Q`: close the connection.
    Quit,
    /// `K`: the connection stays for another SMTP session.
    QuitNewConnection,
    /// `U`: an SMTP command the MTA did not know.
    Unknown(Vec<u8>),
}

/// A whole packet at the front of a buffer: its command byte, its data, and the bytes it
/// took (length prefix included).
pub type Packet<'a> = (u8, &'a [u8], usize);

/// Cuts one packet from the front of `buf`: `Ok(None)` until it is whole.
pub fn cut(buf: &[u8]) -> Result<Option<Packet<'_>>, ProtocolError> {
    let Some(len) = buf.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    if len > MAX_PACKET {
        return Err(ProtocolError::TooLong(len));
    }
    if len == 0 {
        return Err(ProtocolError::Empty);
    }
    let Some(packet) = buf.get(4..4 + len) else {
        return Ok(None);
    };
    Ok(Some((packet[0], &packet[1..], 4 + len)))
}

fn bad(command: u8, why: &'static str) -> ProtocolError {
    ProtocolError::Malformed {
        command: command as char,
        why,
    }
}

/// NUL-terminated strings of `data`; a trailing piece without its NUL is refused.
fn strings(command: u8, data: &[u8]) -> Result<Vec<&[u8]>, ProtocolError> {
    if data.is_empty() {
        return Ok(Vec::new());
    }
    if data.last() != Some(&0) {
        return Err(bad(command, "string without its NUL"));
    }
    Ok(data[..data.len() - 1].split(|&b| b == 0).collect())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn u32_at(command: u8, data: &[u8], at: usize) -> Result<u32, ProtocolError> {
    data.get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(bad(command, "too short"))
}

/// Decodes a packet that [`cut`] gave.
pub fn decode(command: u8, data: &[u8]) -> Result<Command, ProtocolError> {
    Ok(match command {
        b'O' => Command::OptNeg {
            version: u32_at(command, data, 0)?,
            actions: u32_at(command, data, 4)?,
            protocol: u32_at(command, data, 8)?,
        },
        b'D' => {
            let (&stage, rest) = data.split_first().ok_or(bad(command, "no stage"))?;
            let s = strings(command, rest)?;
            let pairs = s
                .chunks(2)
                .filter(|p| p.len() == 2)
                .map(|p| (macro_name(p[0]), text(p[1])))
                .collect();
            Command::Macros { stage, pairs }
        }
        b'C' => connect(data)?,
        b'H' => Command::Helo(
            strings(command, data)?
                .first()
                .map_or_else(String::new, |h| text(h)),
        ),
        b'M' | b'R' => {
            let args: Vec<String> = strings(command, data)?.into_iter().map(text).collect();
            if args.is_empty() {
                return Err(bad(command, "no address"));
            }
            if command == b'M' {
                Command::Mail(args)
            } else {
                Command::Rcpt(args)
            }
        }
        b'T' => Command::Data,
        b'L' => {
            let s = strings(command, data)?;
            match s.as_slice() {
                [name, value] => Command::Header {
                    name: name.to_vec(),
                    value: value.to_vec(),
                },
                _ => return Err(bad(command, "not a name and a value")),
            }
        }
        b'N' => Command::EndOfHeaders,
        b'B' => Command::Body(data.to_vec()),
        b'E' => Command::EndOfMessage,
        b'A' => Command::Abort,
        b'Q' => Command::Quit,
        b'K' => Command::QuitNewConnection,
        b'U' => Command::Unknown(data.strip_suffix(b"\0").unwrap_or(data).to_vec()),
        _ => return Err(bad(command, "unknown command")),
    })
}

/// A macro's name without the braces Sendmail writes around long names: `{daemon_name}`
/// and `daemon_name` are the same macro.
fn macro_name(b: &[u8]) -> String {
    let s = text(b);
    s.strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .map(str::to_string)
        .unwrap_or(s)
}

/// `C`: host name, NUL, family (`4`, `6`, `L` local, `U` unknown), then for an inet family
/// the port (2 bytes) and the address as text with its NUL.
fn connect(data: &[u8]) -> Result<Command, ProtocolError> {
    let c = b'C';
    let nul = memchr::memchr(0, data).ok_or(bad(c, "host name without its NUL"))?;
    let hostname = text(&data[..nul]);
    let rest = &data[nul + 1..];
    let Some((&family, rest)) = rest.split_first() else {
        return Err(bad(c, "no address family"));
    };
    if family != b'4' && family != b'6' {
        return Ok(Command::Connect {
            hostname,
            addr: None,
            port: 0,
        });
    }
    let port = rest.get(..2).ok_or(bad(c, "no port"))?;
    let port = u16::from_be_bytes([port[0], port[1]]);
    let addr = strings(c, &rest[2..])?;
    let addr = addr.first().map(|a| text(a)).unwrap_or_default();
    // Sendmail writes IPv6 addresses as `IPv6:...`.
    let addr = addr.strip_prefix("IPv6:").unwrap_or(&addr);
    let addr = addr.parse().map_err(|_| bad(c, "not an IP address"))?;
    Ok(Command::Connect {
        hostname,
        addr: Some(addr),
        port,
    })
}

/// One answer of ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Our side of the negotiation.
    OptNeg {
        actions: u32,
        protocol: u32,
    },
    Continue,
    Accept,
    Discard,
    Reject,
    Tempfail,
    /// A whole SMTP reply (`554 5.7.0 text`), which rejects or tempfails by its code.
    ReplyCode(String),
    /// Add a field at the end of the header section.
    AddHeader {
        name: String,
        value: Vec<u8>,
    },
    /// Insert a field at `index` (0: before every other field).
    InsertHeader {
        index: u32,
        name: String,
        value: Vec<u8>,
    },
    /// Change the `index`-th (from 1) field named `name`; an empty value deletes it.
    ChangeHeader {
        index: u32,
        name: String,
        value: Vec<u8>,
    },
    /// Remove an envelope recipient.
    DeleteRecipient(String),
    /// Put the message on the MTA's hold queue, with a reason.
    Quarantine(String),
}

fn packet(command: u8, parts: &[&[u8]]) -> Vec<u8> {
    let len = 1 + parts.iter().map(|p| p.len()).sum::<usize>();
    let mut out = Vec::with_capacity(4 + len);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.push(command);
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

/// `s` as a protocol string: NUL-terminated, with any NUL inside (never ours to send) and
/// bare line ends removed, since the MTA would write them into the header section as is.
fn cstr(s: &str) -> Vec<u8> {
    let mut v: Vec<u8> = s.bytes().filter(|&b| b != 0).collect();
    v.push(0);
    v
}

/// A header value as the MTA stores it: continuation lines joined by `\n` alone (Postfix
/// and Sendmail add their own line ends), no NUL; other bytes as they are (mail need not
/// be UTF-8).
fn header_value(v: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = v
        .iter()
        .copied()
        .filter(|&b| b != 0 && b != b'\r')
        .collect();
    out.push(0);
    out
}

impl Response {
    /// The packet on the wire.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Response::OptNeg { actions, protocol } => packet(
                b'O',
                &[
                    &VERSION.to_be_bytes(),
                    &actions.to_be_bytes(),
                    &protocol.to_be_bytes(),
                ],
            ),
            Response::Continue => packet(b'c', &[]),
            Response::Accept => packet(b'a', &[]),
            Response::Discard => packet(b'd', &[]),
            Response::Reject => packet(b'r', &[]),
            Response::Tempfail => packet(b't', &[]),
            Response::ReplyCode(r) => packet(b'y', &[&cstr(&r.replace(['\r', '\n'], " "))]),
            Response::AddHeader { name, value } => {
                packet(b'h', &[&cstr(name), &header_value(value)])
            }
            Response::InsertHeader { index, name, value } => packet(
                b'i',
                &[&index.to_be_bytes(), &cstr(name), &header_value(value)],
            ),
            Response::ChangeHeader { index, name, value } => packet(
                b'm',
                &[&index.to_be_bytes(), &cstr(name), &header_value(value)],
            ),
            Response::DeleteRecipient(r) => packet(b'-', &[&cstr(r)]),
            Response::Quarantine(r) => packet(b'q', &[&cstr(&r.replace(['\r', '\n'], " "))]),
        }
    }
}

/// Our answer to the MTA's `O`: the actions we use that it offers, and the protocol flags we
/// want that it can do. `None` when it speaks a version before 2, which had no negotiation
/// worth the name.
pub fn negotiate(version: u32, actions: u32, protocol: u32) -> Option<Response> {
    if version < 2 {
        return None;
    }
    let want_actions = action::ADDHDRS | action::CHGHDRS | action::DELRCPT | action::QUARANTINE;
    let want_proto = proto::NOUNKNOWN
        | proto::NODATA
        | proto::HDR_LEADSPC
        | proto::NR_HDR
        | proto::NR_CONN
        | proto::NR_HELO
        | proto::NR_MAIL
        | proto::NR_RCPT;
    Some(Response::OptNeg {
        actions: actions & want_actions,
        protocol: protocol & want_proto,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(command: u8, data: &[u8]) -> Vec<u8> {
        packet(command, &[data])
    }

    #[test]
    fn packets_are_cut_only_when_whole() {
        let p = wire(b'H', b"mx.example\0");
        assert_eq!(cut(&p[..3]), Ok(None));
        assert_eq!(cut(&p[..p.len() - 1]), Ok(None));
        let (c, data, used) = cut(&p).unwrap().unwrap();
        assert_eq!((c, used), (b'H', p.len()));
        assert_eq!(decode(c, data), Ok(Command::Helo("mx.example".into())));
    }

    #[test]
    fn a_hostile_length_is_refused_before_anything_is_allocated() {
        let huge = (u32::MAX).to_be_bytes();
        assert_eq!(cut(&huge), Err(ProtocolError::TooLong(u32::MAX as usize)));
        assert_eq!(cut(&[0, 0, 0, 0]), Err(ProtocolError::Empty));
    }

    #[test]
    fn connect_with_inet_unix_and_broken_addresses() {
        let mut d = b"client.example\x004".to_vec();
        d.extend_from_slice(&25u16.to_be_bytes());
        d.extend_from_slice(b"192.0.2.7\0");
        assert_eq!(
            decode(b'C', &d),
            Ok(Command::Connect {
                hostname: "client.example".into(),
                addr: Some("192.0.2.7".parse().unwrap()),
                port: 25
            })
        );
        let mut d6 = b"h\x006\x00\x19".to_vec();
        d6.extend_from_slice(b"IPv6:2001:db8::1\0");
        assert!(
            matches!(decode(b'C', &d6), Ok(Command::Connect { addr: Some(a), .. }) if a.is_ipv6())
        );
        assert!(matches!(
            decode(b'C', b"localhost\0L"),
            Ok(Command::Connect { addr: None, .. })
        ));
        assert!(decode(b'C', b"h\x004\x00").is_err());
        assert!(decode(b'C', b"h\x004\x00\x19nonsense\0").is_err());
        assert!(decode(b'C', b"no nul").is_err());
    }

    #[test]
    fn macros_headers_and_envelope() {
        assert_eq!(
            decode(b'D', b"C{daemon_name}\0ORIGINATING\0j\0mx\0odd\0"),
            Ok(Command::Macros {
                stage: b'C',
                pairs: vec![
                    ("daemon_name".into(), "ORIGINATING".into()),
                    ("j".into(), "mx".into())
                ]
            })
        );
        assert_eq!(
            decode(b'L', b"Subject\0 caf\xe9\0"),
            Ok(Command::Header {
                name: b"Subject".to_vec(),
                value: b" caf\xe9".to_vec()
            })
        );
        assert!(decode(b'L', b"Subject\0").is_err());
        assert_eq!(
            decode(b'M', b"<a@example.org>\0SIZE=10\0"),
            Ok(Command::Mail(vec![
                "<a@example.org>".into(),
                "SIZE=10".into()
            ]))
        );
        assert!(decode(b'R', b"").is_err());
        assert!(decode(b'Z', b"").is_err());
        assert!(decode(b'O', b"\0\0\0\x06").is_err());
    }

    #[test]
    fn negotiation_takes_only_what_both_sides_have() {
        let Some(Response::OptNeg { actions, protocol }) = negotiate(6, 0x1ff, 0x1f_ffff) else {
            panic!("no answer");
        };
        assert_eq!(actions, 0x01 | 0x08 | 0x10 | 0x20);
        assert_eq!(protocol, 0x100 | 0x200 | 0x10_0000 | 0x80 | 0xf000);
        let Some(Response::OptNeg { actions, protocol }) = negotiate(6, 0x01, 0) else {
            panic!("no answer");
        };
        assert_eq!((actions, protocol), (0x01, 0));
        assert_eq!(negotiate(1, 0, 0), None);
    }

    #[test]
    fn responses_on_the_wire() {
        assert_eq!(Response::Continue.encode(), b"\0\0\0\x01c");
        assert_eq!(
            Response::ReplyCode("554 5.7.0 Reject\r\nX".into()).encode(),
            b"\0\0\0\x15y554 5.7.0 Reject  X\0"
        );
        let ch = Response::ChangeHeader {
            index: 2,
            name: "X-Spam-Flag".into(),
            value: Vec::new(),
        }
        .encode();
        assert_eq!(&ch[4..10], b"m\0\0\0\x02X");
        let ins = Response::InsertHeader {
            index: 0,
            name: "X-Spam-Status".into(),
            value: b"Yes,\r\n\tscore=7".to_vec(),
        }
        .encode();
        assert!(ins.ends_with(b"X-Spam-Status\0Yes,\n\tscore=7\0"));
        assert_eq!(
            ins.len(),
            4 + u32::from_be_bytes([ins[0], ins[1], ins[2], ins[3]]) as usize
        );
    }
}
