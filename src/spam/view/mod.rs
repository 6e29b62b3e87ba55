//! One message as the rules see it, built once before any rule runs: the header fields
//! ([`Headers`]), the rendered body paragraphs (`body`), the decoded text parts line by line
//! (`rawbody`), the whole message (`full`), the URI list (`uri`), every MIME part's own header
//! fields (`mimeheader`), the relays from `Received`, and what the MIME and HTML eval
//! functions ask about.

pub mod attachments;
pub mod canonical;
pub mod headers;
pub mod html;
pub mod mime_facts;
pub mod received;
pub mod relays;
pub mod render;
pub mod trust;
pub mod uri;

use headers::Headers;
use html::Html;
use mail_parser::{MimeHeaders, PartType};
use relays::Relays;
use std::rc::Rc;
use uri::UriList;

/// A MIME part, as the MIME eval functions and `mimeheader` rules see it.
#[derive(Debug, Clone)]
pub struct Part {
    pub headers: Headers,
    /// `type/subtype`, lower case (`text/plain` when not given).
    pub content_type: String,
    pub charset: String,
    /// `Content-Transfer-Encoding`, lower case.
    pub encoding: String,
    pub filename: Option<String>,
    pub attachment: bool,
    /// Decoded size.
    pub size: usize,
    /// A quoted-printable line longer than 78 characters (RFC 5322's limit; SpamAssassin
    /// lets RFC 2045's 76 pass, as Apple Mail and Outlook exceed it).
    pub qp_long_line: bool,
    /// Text said to be plain US-ASCII (or with no charset) that has NUL, a lone CR or an
    /// 8-bit byte in its raw body.
    pub ascii_illegal: bool,
    pub leaf: bool,
    /// `Content-Disposition`, lower case, as written (`attachment; filename=...`).
    pub disposition: String,
    /// Counts over the raw lines (leaf parts).
    pub raw: mime_facts::RawFacts,
    /// A base64 GIF, PNG or JPEG's kind and pixel area, when its header tells.
    pub image: Option<(&'static str, u64)>,
}

/// Everything the rules look at.
#[derive(Debug, Clone, Default)]
pub struct MessageView {
    pub headers: Headers,
    pub full: Vec<u8>,
    pub body: Vec<String>,
    pub rawbody: Vec<String>,
    pub uris: Vec<String>,
    pub parts: Vec<Part>,
    /// One summary per HTML part (SpamAssassin's HTML tests look at each part on its own).
    pub html: Vec<Html>,
    pub has_html: bool,
    pub has_text_plain: bool,
    pub relays: Relays,
    /// Bytes of the body (after the header section).
    pub body_len: usize,
    /// Text after the final boundary of the top-level multipart.
    pub epilogue: bool,
    /// How the HTML and text alternatives differ (multipart/alternative).
    pub alternative: mime_facts::Alternative,
    /// What the attachments hold (macros, documents read, QR codes).
    pub attachments: attachments::Attachments,
    /// `body`, `rawbody` and `uris` each joined with line breaks: one pass of a rule's
    /// joined-text check over these rules out most rules without a call per paragraph.
    pub body_joined: Vec<u8>,
    pub rawbody_joined: Vec<u8>,
    pub uris_joined: Vec<u8>,
    /// Date minus the closest Received date, in seconds, once computed (eval::date: five
    /// rules ask, and parsing every Received date each time showed in profiles).
    pub date_shift: std::cell::OnceCell<i64>,
    /// Header values already computed (hundreds of header rules ask for a few dozen specs;
    /// decoding each time cost more than the matching). Shared, not cloned: the rules ask
    /// thousands of times a message, and copying each value showed in profiles.
    header_cache: std::cell::RefCell<std::collections::HashMap<String, Option<Rc<str>>>>,
}

/// Where the body starts: after the header section (the decoder's reading of it) and its
/// blank line.
pub fn body_start(raw: &[u8]) -> usize {
    let head = crate::decode::header_section(raw).len();
    let rest = &raw[head..];
    head + if rest.starts_with(b"\r\n") {
        2
    } else {
        usize::from(rest.starts_with(b"\n"))
    }
}

/// Text other than white space after the final `--boundary--` of the top-level multipart.
fn epilogue(raw: &[u8], boundary: &str) -> bool {
    let close = format!("--{boundary}--");
    let Some(at) = memchr::memmem::rfind(raw, close.as_bytes()) else {
        return false;
    };
    raw[at + close.len()..]
        .iter()
        .any(|b| !b.is_ascii_whitespace())
}

/// The relay chain from `Received`, with the fields whose address counts as the oldest
/// relay (`originating_ip_headers`: `X-Originating-IP` and the like).
fn relays_of(headers: &Headers, settings: &ViewSettings) -> Relays {
    // SpamAssassin reads the first field of each name, and takes any address in it
    // (IPv6 too) as its `IP_ADDRESS` pattern finds it.
    let originating_ips: Vec<String> = settings
        .originating
        .iter()
        .filter_map(|name| {
            let first = headers.raw_values(name).into_iter().next()?;
            received::first_ip_address(&first)
        })
        .collect();
    Relays::with_originating(
        headers.raw_values("Received").iter().map(String::as_str),
        originating_ips.into_iter(),
        &settings.trust,
    )
}

/// What the rule files say about reading a message: the fields whose address is the oldest
/// relay (`originating_ip_headers`) and which relays are ours (`trusted_networks` ...).
#[derive(Debug, Clone, Default)]
pub struct ViewSettings {
    pub originating: Vec<String>,
    pub trust: trust::Trust,
    /// Reading Office documents, PDFs and QR codes for the rules, within these limits;
    /// `None`: attachments are not read (as SpamAssassin without its ExtractText tools).
    pub extract: Option<crate::extract::Limits>,
}

/// Part `n` of a message as the MIME rules see it, and its raw (undecoded) body.
fn part_facts<'r>(
    raw: &'r [u8],
    n: usize,
    part: &mail_parser::MessagePart<'_>,
) -> (Part, &'r [u8]) {
    let start = part.offset_header as usize;
    let body_at = (part.offset_body as usize).min(raw.len());
    let section = raw.get(start.min(body_at)..body_at).unwrap_or(&[]);
    let (ctype, charset) = match part.content_type() {
        Some(ct) => (
            match ct.subtype() {
                Some(s) => format!("{}/{}", ct.ctype(), s).to_ascii_lowercase(),
                None => ct.ctype().to_ascii_lowercase(),
            },
            ct.attribute("charset").unwrap_or("").to_ascii_lowercase(),
        ),
        None => ("text/plain".to_string(), String::new()),
    };
    let encoding = part
        .content_transfer_encoding()
        .unwrap_or("")
        .to_ascii_lowercase();
    let leaf = !matches!(part.body, PartType::Multipart(_));
    let raw_body = raw
        .get(body_at..(part.offset_end as usize).min(raw.len()))
        .unwrap_or(&[]);
    let qp_long_line = encoding == "quoted-printable"
        && raw_body
            .split(|&b| b == b'\n')
            .any(|l| l.strip_suffix(b"\r").unwrap_or(l).len() > 78);
    let ascii_illegal = ctype == "text/plain"
        && (charset.is_empty() || charset == "us-ascii")
        && raw_body.iter().enumerate().any(|(i, &b)| {
            b == 0 || b >= 0x80 || (b == b'\r' && raw_body.get(i + 1) != Some(&b'\n'))
        });
    let filename = part.attachment_name().map(str::to_string);
    let headers = Headers::parse(section, "");
    let disposition = headers
        .raw_values("content-disposition")
        .first()
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let raw_counts = if leaf {
        mime_facts::raw_facts(&ctype, &encoding, raw_body)
    } else {
        mime_facts::RawFacts::default()
    };
    let image = (leaf && encoding == "base64")
        .then(|| mime_facts::image_area(&ctype, part.contents()))
        .flatten();
    let attachment = leaf
        && n > 0
        && (filename.is_some()
            || part
                .content_disposition()
                .is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"))
            || !matches!(part.body, PartType::Text(_) | PartType::Html(_)));
    let facts = Part {
        headers,
        content_type: ctype,
        charset,
        encoding,
        filename,
        attachment,
        size: part.len(),
        qp_long_line,
        ascii_illegal,
        leaf,
        disposition,
        raw: raw_counts,
        image,
    };
    (facts, raw_body)
}

/// Longest piece of a text part a rawbody rule sees at once (SpamAssassin's 2048).
const MAX_CHUNK: usize = 2048;

/// A decoded text part as rawbody rules see it: whole when short, else cut into pieces of
/// 2 to 4 KiB, preferably after a line break, else after a `>`, else after a space.
fn short_paragraphs(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    if b.len() <= MAX_CHUNK {
        return vec![text.to_string()];
    }
    let mut out = Vec::new();
    let mut ofs = 0;
    let find = |c: u8, from: usize| {
        b.get(from..)
            .and_then(|r| r.iter().position(|&x| x == c))
            .map(|p| p + from)
    };
    while b.len() - ofs > 2 * MAX_CHUNK {
        let fits = |j: usize| j + 1 - ofs <= 2 * MAX_CHUNK;
        let j = [b'\n', b'>', b' ']
            .iter()
            .find_map(|&c| find(c, ofs + MAX_CHUNK).filter(|&j| fits(j)))
            .unwrap_or(ofs + MAX_CHUNK);
        out.push(String::from_utf8_lossy(&b[ofs..=j]).into_owned());
        ofs = j + 1;
    }
    if ofs < b.len() {
        out.push(String::from_utf8_lossy(&b[ofs..]).into_owned());
    }
    out
}

/// A text part mail-parser could not decode (its multipart has no closing boundary, say):
/// the transfer encoding undone here and the charset applied, as SpamAssassin still reads it.
fn redecode(raw_body: &[u8], encoding: &str, charset: &str) -> Option<String> {
    use mail_parser::decoders;
    let bytes = match encoding {
        "base64" => decoders::base64::base64_decode(raw_body)
            .unwrap_or_else(|| mime_facts::lenient_base64(raw_body)),
        "quoted-printable" => decoders::quoted_printable::quoted_printable_decode(raw_body)?,
        _ => return None,
    };
    Some(
        match decoders::charsets::map::charset_decoder(charset.as_bytes()) {
            Some(decode) => decode(&bytes),
            None => String::from_utf8_lossy(&bytes).into_owned(),
        },
    )
}

impl MessageView {
    /// Builds the view of `raw` (a whole message, LF or CRLF line ends).
    pub fn new(raw: &[u8], envelope_from: &str) -> MessageView {
        Self::build(raw, envelope_from, &ViewSettings::default())
    }

    /// Same, with the fields whose address counts as the oldest relay
    /// (`originating_ip_headers`: `X-Originating-IP` and the like).
    pub fn build(raw: &[u8], envelope_from: &str, settings: &ViewSettings) -> MessageView {
        let parsed = crate::decode::parse(raw);
        Self::build_parsed(&parsed, envelope_from, settings)
    }

    /// The view of a message the decoder has parsed already (its MIME structure is read
    /// once for both). A leading mbox "From " line is not a header field: `parse` skipped
    /// it, as SpamAssassin does.
    pub fn build_parsed(
        parsed: &crate::decode::Parsed<'_>,
        envelope_from: &str,
        settings: &ViewSettings,
    ) -> MessageView {
        let raw = parsed.raw;
        let head_end = body_start(raw);
        let headers = Headers::parse(&raw[..head_end], envelope_from);
        let mut view = MessageView {
            full: raw.to_vec(),
            body_len: raw.len().saturating_sub(head_end),
            relays: relays_of(&headers, settings),
            ..MessageView::default()
        };
        let mut uris = UriList::default();
        if let Some(msg) = parsed.message() {
            let mut reader = attachments::Reader::new(settings.extract);
            view.add_parts(raw, msg, &mut uris, &mut reader);
            view.attachments = reader.facts;
        }
        for h in &view.html {
            uris.add_text(&h.text);
        }
        view.uris = canonical::canonicalize(uris.uris);
        view.headers = headers;
        view.body_joined = view.body.join("\n").into_bytes();
        view.rawbody_joined = view.rawbody.join("\n").into_bytes();
        view.uris_joined = view.uris.join("\n").into_bytes();
        view
    }

    /// Every MIME part of `msg`: its facts for the MIME rules, and its text for the body,
    /// rawbody and URI rules.
    fn add_parts(
        &mut self,
        raw: &[u8],
        msg: &mail_parser::Message<'_>,
        uris: &mut UriList,
        reader: &mut attachments::Reader,
    ) {
        if let Some(b) = msg
            .parts
            .first()
            .and_then(|p| p.content_type())
            .and_then(|c| c.attribute("boundary"))
        {
            self.epilogue = epilogue(raw, b);
        }
        // Text parts for the body rules, in order; repaired ones as decoded here.
        let mut texts: Vec<(bool, std::borrow::Cow<str>)> = Vec::new();
        // Each part's rendered text, by part number, for the alternatives' comparison.
        let mut rendered: Vec<Option<(usize, bool)>> = vec![None; msg.parts.len()];
        for (n, part) in msg.parts.iter().enumerate() {
            let (facts, raw_body) = part_facts(raw, n, part);
            let repaired = match &part.body {
                PartType::Text(_) | PartType::Html(_) if part.is_encoding_problem => {
                    redecode(raw_body, &facts.encoding, &facts.charset)
                }
                _ => None,
            };
            let was_repaired = repaired.is_some();
            let text: Option<(bool, std::borrow::Cow<str>)> = match (repaired, &part.body) {
                (Some(t), _) => Some((facts.content_type == "text/html", t.into())),
                (None, PartType::Text(t)) => Some((false, t.as_ref().into())),
                (None, PartType::Html(h)) => Some((true, h.as_ref().into())),
                _ => None,
            };
            if let Some((html, t)) = text {
                // A bare `text` type counts as plain text only as mail-parser decoded it.
                let plain = facts.content_type == "text/plain"
                    || (!was_repaired && facts.content_type == "text");
                rendered[n] = Some((texts.len(), html));
                texts.push((false, self.add_text(&t, html, plain, uris).into()));
            }
            reader.add_part(part, uris);
            self.parts.push(facts);
        }
        let html_img: Vec<bool> = self.html.iter().map(|h| h.has_img).collect();
        self.alternative = mime_facts::alternatives(msg, &self.parts, |n| {
            let (at, html) = rendered.get(n).copied().flatten()?;
            let html_index = rendered[..n].iter().flatten().filter(|(_, h)| *h).count();
            Some(mime_facts::Rendered {
                html,
                text: texts.get(at).map_or("", |(_, t)| t.as_ref()),
                has_img: html && html_img.get(html_index).copied().unwrap_or(false),
            })
        });
        // Documents' text after the message's own, as SpamAssassin renders parts in order.
        texts.extend(reader.texts.drain(..).map(|t| (false, t.into())));
        let parts: Vec<(bool, &str)> = texts.iter().map(|(h, t)| (*h, t.as_ref())).collect();
        self.body = render::render(msg.subject(), &parts);
    }

    /// Adds one text part's text (HTML is rendered first) to the view; gives the text the
    /// body rules read.
    fn add_text(&mut self, text: &str, html: bool, plain: bool, uris: &mut UriList) -> String {
        self.rawbody.extend(short_paragraphs(text));
        if html {
            self.has_html = true;
            let parsed = Html::parse(text);
            let rendered = parsed.text.clone();
            self.html.push(parsed);
            uris.add_html(text);
            rendered
        } else {
            self.has_text_plain |= plain;
            uris.add_text(text);
            text.to_string()
        }
    }

    /// The envelope sender as SpamAssassin finds it: the SMTP envelope; else what the last
    /// untrusted relay recorded (`envelope-from`); else nothing when fetchmail fetched mail
    /// with an `X-Sender`; else the fields [`Headers::envelope_from`] trusts.
    pub fn envelope_from(&self) -> Option<String> {
        let h = &self.headers;
        if let Some(e) = h.envelope_from().filter(|_| h.has_envelope()) {
            return Some(e);
        }
        let last_hop = self
            .relays
            .untrusted
            .first()
            .or_else(|| self.relays.trusted.last());
        if let Some(r) = last_hop.filter(|r| r.envfrom.contains('@')) {
            return Some(r.envfrom.clone());
        }
        let x_sender = h.raw_values("X-Sender").iter().any(|v| v.contains('@'));
        if x_sender
            && h.raw_values("Received")
                .iter()
                .any(|r| r.contains("(fetchmail"))
        {
            return None;
        }
        h.envelope_from()
    }

    /// Every address the message says it is from, lower case, without repeats
    /// (SpamAssassin's `all_from_addrs`): the first Resent-From alone when there is one,
    /// else From, Envelope-Sender, Resent-Sender, X-Envelope-From and the envelope sender.
    pub fn all_from_addrs(&self) -> Vec<String> {
        if let Some(a) = self
            .header("Resent-From:first:addr")
            .map(|a| a.trim().to_ascii_lowercase())
            .filter(|a| !a.is_empty())
        {
            return vec![a];
        }
        let mut out: Vec<String> = Vec::new();
        for spec in [
            "From:addr",
            "Envelope-Sender:addr",
            "Resent-Sender:addr",
            "X-Envelope-From:addr",
            "EnvelopeFrom:addr",
        ] {
            for a in self.header(spec).unwrap_or_default().lines() {
                let a = a.trim().to_ascii_lowercase();
                if !a.is_empty() && !out.contains(&a) {
                    out.push(a);
                }
            }
        }
        out
    }

    /// A header value as a header rule asks for it, pseudo-headers included.
    pub fn header(&self, spec: &str) -> Option<String> {
        self.header_shared(spec).map(|v| v.to_string())
    }

    /// [`Self::header`] without a copy of the value: for the rules' hot paths.
    pub fn header_shared(&self, spec: &str) -> Option<Rc<str>> {
        if let Some(v) = self.header_cache.borrow().get(spec) {
            return v.clone();
        }
        let name = spec.split(':').next().unwrap_or(spec).trim();
        let raw = spec.ends_with(":raw");
        let boundary = self.relays.first_untrusted_field;
        let v = if matches!(name, "ALL-EXTERNAL" | "ALL-UNTRUSTED") {
            // From the first untrusted relay's Received on; nothing when all are trusted.
            boundary.and_then(|b| self.headers.all_in_received_range(Some(b), None, raw))
        } else if matches!(name, "ALL-INTERNAL" | "ALL-TRUSTED") {
            // Down to that Received; everything when all are trusted.
            self.headers.all_in_received_range(None, boundary, raw)
        } else if name == "EnvelopeFrom" {
            // `:addr` gives the address alone, as for any field.
            let bare = spec.contains(':');
            self.envelope_from()
                .map(|e| if bare { e } else { format!("{e}\n") })
        } else {
            self.relays
                .pseudo_header(name)
                .or_else(|| self.headers.get(spec))
        };
        let v: Option<Rc<str>> = v.map(Rc::from);
        self.header_cache
            .borrow_mut()
            .insert(spec.to_string(), v.clone());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_every_view() {
        let m = b"From x@y Mon Jan 1\nReceived: from a.example (a.example [192.0.2.1]) by mx.local id 1\n\
Subject: Hi\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n\
--b\nContent-Type: text/html\n\n<p>Visit <a href=\"http://x.example/\">here</a></p>\n\
--b\nContent-Type: application/pdf; name=a.pdf\nContent-Transfer-Encoding: base64\n\nJVBERg==\n--b--\n";
        let v = MessageView::new(m, "x@y");
        assert_eq!(v.body[0], "Hi");
        assert!(v.has_html && !v.has_text_plain);
        assert_eq!(v.uris, vec!["http://x.example/"]);
        assert_eq!(v.parts.len(), 3);
        assert!(v.parts[2].attachment && v.parts[2].filename.as_deref() == Some("a.pdf"));
        assert_eq!(
            v.parts[1].headers.get("Content-Type").as_deref(),
            Some("text/html\n")
        );
        assert!(
            v.header("X-Spam-Relays-Untrusted")
                .unwrap()
                .contains("ip=192.0.2.1")
        );
        assert!(v.rawbody.iter().any(|l| l.contains("<a href")));
        // Long parts come in pieces of 2 to 4 KiB cut after a line break.
        let long = "line of text\n".repeat(1000);
        let pieces = short_paragraphs(&long);
        assert!(pieces.len() > 2 && pieces.iter().all(|p| p.len() <= 2 * MAX_CHUNK));
        assert_eq!(pieces.concat(), long);
        assert!(pieces[0].ends_with('\n'));
        assert!(v.full.starts_with(b"Received:"));
    }

    #[test]
    fn headers_by_trust() {
        let trusted = "Received: from a (a [10.0.0.1]) by mx (Postfix) id 1\nSubject: s\n\nb\n";
        let all_trusted = MessageView::new(trusted.as_bytes(), "");
        assert_eq!(all_trusted.header("ALL-EXTERNAL"), None);
        assert!(
            all_trusted
                .header("ALL-INTERNAL")
                .is_some_and(|h| h.contains("Subject: s"))
        );
        let m = "X-Top: 1\nReceived: from a (a [10.0.0.1]) by mx (Postfix) id 1\n\
Received: from b.example (b.example [192.0.2.1]) by a (Postfix) id 2\nX-Mid: 2\n\
Received: from c.example (c.example [192.0.2.2]) by b.example (Postfix) id 3\nSubject: s\n\nbody\n";
        let v = MessageView::new(m.as_bytes(), "");
        let ext = v.header("ALL-EXTERNAL").unwrap();
        assert!(
            ext.starts_with("Received: from b.example")
                && ext.contains("X-Mid: 2\nReceived: from c.example"),
            "{ext}"
        );
        assert!(!ext.contains("X-Top"));
        let int = v.header("ALL-INTERNAL").unwrap();
        assert!(
            int.starts_with("X-Top: 1\nReceived: from a")
                && int.contains("Received: from b.example")
                && !int.contains("X-Mid"),
            "{int}"
        );
    }

    #[test]
    fn envelope_sender_without_an_envelope() {
        let rcvd =
            "Received: from a.example (a.example [192.0.2.1]) by mx.example (Postfix) id 1\n";
        let top = format!("Return-Path: <bounce@lists.example>\n{rcvd}From: x@y.example\n\nb\n");
        let v = MessageView::new(top.as_bytes(), "");
        assert_eq!(
            v.header("EnvelopeFrom:addr").as_deref(),
            Some("bounce@lists.example")
        );
        // Below a Received field anybody could have written it.
        let below = format!("{rcvd}Return-Path: <bounce@lists.example>\nFrom: x@y.example\n\nb\n");
        assert_eq!(
            MessageView::new(below.as_bytes(), "").header("EnvelopeFrom"),
            None
        );
        // What the last relay recorded wins; the SMTP envelope wins over everything.
        let relayed = "Received: from a.example (a.example [192.0.2.1]) by mx.example (Postfix) id 1 (envelope-from <e@relay.example>)\nReturn-Path: <r@x.example>\n\nb\n";
        assert_eq!(
            MessageView::new(relayed.as_bytes(), "")
                .envelope_from()
                .as_deref(),
            Some("e@relay.example")
        );
        assert_eq!(
            MessageView::new(relayed.as_bytes(), "s@smtp.example")
                .envelope_from()
                .as_deref(),
            Some("s@smtp.example")
        );
    }

    #[test]
    fn a_part_without_closing_boundary_is_still_decoded() {
        let m = b"Subject: s\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n\
--b\nContent-Type: text/html\nContent-Transfer-Encoding: base64\n\n\
PGh0bWw+PGJvZHk+PGEgaHJlZj0iaHR0cDovL3guZXhhbXBsZS8iPmdvPC9hPjwvYm9keT48L2h0bWw+\n";
        let v = MessageView::new(m, "");
        assert!(v.has_html, "{v:?}");
        assert_eq!(v.uris, vec!["http://x.example/"]);
        assert_eq!(v.body, vec!["s", "go"]);
    }
}
