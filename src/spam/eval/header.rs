//! Eval functions over header fields and relays (SpamAssassin's HeaderEval and relay checks).

use super::date::{RCVD_DATE, parse_date};
use super::{Ctx, Func, domain_of, num};

pub(super) fn lookup(name: &str) -> Option<Func> {
    Some(match name {
        "check_for_missing_to_header" => missing_to,
        "check_outlook_message_id" => outlook_message_id,
        "similar_recipients" => similar_recipients,
        "sorted_recipients" => sorted_recipients,
        "check_equal_from_domains" => different_from_domains,
        "check_illegal_chars" => illegal_chars,
        "check_header_count_range" => header_count_range,
        "subject_is_all_caps" => subject_all_caps,
        "check_for_matching_env_and_hdr_from" => matching_env_and_hdr_from,
        "check_for_to_in_subject" => to_in_subject,
        "check_unresolved_template" => unresolved_template,
        "check_ratware_name_id" => ratware_name_id,
        "check_ratware_envelope_from" => ratware_envelope_from,
        "gated_through_received_hdr_remover" => gated_through_received_hdr_remover,
        "check_for_forged_gmail_received_headers" => forged_gmail,
        _ => return None,
    })
}

fn missing_to(ctx: &Ctx, _: &[String]) -> bool {
    let h = &ctx.view.headers;
    !h.exists("To") && !h.exists("Apparently-To")
}

/// The domain a registrar hands out: the last two labels, or three under a two-label
/// public suffix (`util_rb_2tld`), or four under a three-label one (`util_rb_3tld`).
pub(super) fn registrable(domain: &str, ctx: &Ctx) -> String {
    registrable_in(domain, ctx.lists)
}

/// [`registrable`] with the lists alone (the network rules' link domains).
pub fn registrable_in(domain: &str, lists: &super::Lists) -> String {
    let labels: Vec<&str> = domain.split('.').collect();
    let tail = |n: usize| labels[labels.len().saturating_sub(n)..].join(".");
    let listed = |list: &str, v: &str| lists.get(list).is_some_and(|l| l.contains(v));
    if labels.len() >= 4 && listed("util_rb_3tld", &tail(3)) {
        tail(4)
    } else if labels.len() >= 3 && listed("util_rb_2tld", &tail(2)) {
        tail(3)
    } else {
        tail(2)
    }
}

/// From: and the envelope sender are in different registered domains.
fn different_from_domains(ctx: &Ctx, _: &[String]) -> bool {
    let from = ctx.view.header("From:addr").and_then(|a| domain_of(&a));
    let env = ctx
        .view
        .header("EnvelopeFrom:addr")
        .and_then(|a| domain_of(&a));
    match (from, env) {
        (Some(f), Some(e)) => registrable(&f, ctx) != registrable(&e, ctx),
        _ => false,
    }
}

/// Characters outside ASCII in a field (`ALL`: every field but Subject and From): at least
/// `count` of them and more than `ratio` of its length.
fn illegal_chars(ctx: &Ctx, args: &[String]) -> bool {
    let which = args.first().map(String::as_str).unwrap_or("ALL");
    let ratio = num(args, 1).unwrap_or(0.0);
    let count = num(args, 2).unwrap_or(1.0);
    let text: String = if which == "ALL" {
        let h = &ctx.view.headers;
        let names: Vec<String> = h.names().map(str::to_string).collect();
        names
            .iter()
            .filter(|n| !n.eq_ignore_ascii_case("Subject") && !n.eq_ignore_ascii_case("From"))
            .flat_map(|n| h.raw_values(n).into_iter().take(1))
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        ctx.view.headers.raw_values(which).join("\n")
    };
    if text.is_empty() {
        return false;
    }
    let illegal = text.chars().filter(|c| !c.is_ascii()).count() as f64;
    illegal >= count && illegal / text.chars().count() as f64 > ratio
}

fn header_count_range(ctx: &Ctx, args: &[String]) -> bool {
    let Some(name) = args.first() else {
        return false;
    };
    let n = ctx.view.headers.raw_values(name).len() as f64;
    num(args, 1).is_none_or(|min| n >= min) && num(args, 2).is_none_or(|max| n <= max)
}

/// A subject of several words, at least 10 characters, whose letters are all capitals.
fn subject_all_caps(ctx: &Ctx, _: &[String]) -> bool {
    let Some(s) = ctx.view.headers.get("Subject") else {
        return false;
    };
    let mut s = s.trim();
    loop {
        let lower = s.to_ascii_lowercase();
        let Some(p) = ["re:", "fw:", "fwd:", "aw:", "antwort:", "sv:"]
            .iter()
            .find(|p| lower.starts_with(**p))
        else {
            break;
        };
        s = s[p.len()..].trim_start();
    }
    if !s.contains(char::is_whitespace) || s.len() < 10 {
        return false;
    }
    let letters: Vec<char> = s.chars().filter(char::is_ascii_alphabetic).collect();
    !letters.is_empty() && letters.iter().all(char::is_ascii_uppercase)
}

/// Outlook's Message-ID carries a timestamp (`<xxxxTTTTTTTT$...$...@`): invalid when it is
/// far (250 ticks) from both the Date field and the oldest Received date.
fn outlook_message_id(ctx: &Ctx, _: &[String]) -> bool {
    static ID: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        crate::spam::builtin_regex(r"^<[0-9a-f]{4}([0-9a-f]{8})\$[0-9a-f]{8}\$[0-9a-f]{8}@")
    });
    let Some(id) = ctx.view.header("MESSAGEID") else {
        return false;
    };
    let Some(token) = ID
        .captures(&id)
        .and_then(|c| i64::from_str_radix(&c[1], 16).ok())
    else {
        return false;
    };
    let expected = |t: i64| (t as f64 * 0.0023283064365387 + 27111902.8329849) as i64;
    let far = |t: Option<i64>| (token - expected(t.unwrap_or(0))).abs() >= 250;
    let date = ctx
        .view
        .headers
        .raw_values("Date")
        .first()
        .and_then(|d| parse_date(d));
    if !far(date) {
        return false;
    }
    let oldest = ctx
        .view
        .headers
        .raw_values("Received")
        .last()
        .and_then(|r| RCVD_DATE.find(r).and_then(|m| parse_date(m.as_str())));
    far(oldest)
}

/// The recipients in To and Cc (then Bcc), neighbours that repeat dropped, at most 256.
fn recipients(ctx: &Ctx) -> Vec<String> {
    let mut inputs: Vec<String> = Vec::new();
    for field in [&["To", "Cc"][..], &["Bcc"][..]] {
        for name in field {
            for v in ctx.view.headers.raw_values(name) {
                inputs.extend(super::addresses(&v));
            }
        }
        if inputs.len() >= 5 {
            break;
        }
    }
    let mut out: Vec<String> = Vec::new();
    for a in inputs {
        if out.last().is_none_or(|p| !p.eq_ignore_ascii_case(&a)) {
            out.push(a);
        }
        if out.len() == 256 {
            break;
        }
    }
    out
}

/// How alike the recipients are: pairs sharing the first two characters of the local part,
/// or of different host names, per pair (5 or more recipients), in [min, max).
fn similar_recipients(ctx: &Ctx, args: &[String]) -> bool {
    let addr = recipients(ctx);
    let mut similar = 0.0;
    if addr.len() >= 5 {
        let two = |s: &str| s.chars().take(2).collect::<String>();
        let host = |a: &str| {
            a.split_once('@')
                .map(|(_, h)| h.to_string())
                .unwrap_or_default()
        };
        let (mut hits, mut pairs) = (0usize, 0usize);
        for i in 0..addr.len() {
            for j in i + 1..addr.len() {
                hits += usize::from(two(&addr[i]) == two(&addr[j]));
                let (hi, hj) = (host(&addr[i]), host(&addr[j]));
                hits += usize::from(two(&hi) == two(&hj) && hi != hj);
                pairs += 1;
            }
        }
        similar = hits as f64 / pairs as f64;
    }
    num(args, 0).is_none_or(|min| similar >= min) && num(args, 1).is_none_or(|max| similar < max)
}

/// Seven or more recipients in sorted order.
fn sorted_recipients(ctx: &Ctx, _: &[String]) -> bool {
    let addr = recipients(ctx);
    addr.len() >= 7 && addr.windows(2).all(|w| w[0] <= w[1])
}

/// A header value as SpamAssassin's `get` gives it to eval functions: empty when unset.
fn value(ctx: &Ctx, spec: &str) -> String {
    ctx.view.header(spec).unwrap_or_default()
}

/// A regex built from a message's own text; `None` if it does not compile (it always does,
/// as the text is escaped, unless it is too large).
fn runtime_regex(pattern: &str) -> Option<regex::Regex> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(1 << 20)
        .build()
        .ok()
}

/// The envelope sender and From: are the same address, ignoring case (both unset counts,
/// as in SpamAssassin, where either reads as empty).
fn matching_env_and_hdr_from(ctx: &Ctx, _: &[String]) -> bool {
    value(ctx, "EnvelopeFrom:addr")
        .trim()
        .eq_ignore_ascii_case(value(ctx, "From:addr").trim())
}

/// The recipient's address (`address`) or its local part (`user`) in the Subject, the
/// latter only in the ways spammers write it: alone, as a salutation (`bob: ...`), after
/// `re:`/`fw:` and one word, or at the end of a list.
fn to_in_subject(ctx: &Ctx, args: &[String]) -> bool {
    let to = value(ctx, "To:addr");
    let to = to.trim();
    if to.is_empty() {
        return false;
    }
    let subject = value(ctx, "Subject");
    let subject = subject.trim_end_matches('\n');
    match args.first().map(String::as_str) {
        Some("address") => runtime_regex(&format!(r"\b{}\b", regex::escape(to)))
            .is_some_and(|re| re.is_match(subject)),
        Some("user") => user_in_subject(subject, to.split('@').next().unwrap_or("")),
        _ => false,
    }
}

/// SpamAssassin's four ways of writing the local part `user` in a Subject, matched by hand
/// (a regex built per message cost half a millisecond): `re:`/`fw:`, perhaps a word, then
/// the user; the user as written then punctuation (`bob: ...`); the user alone; `, user!`.
fn user_in_subject(subject: &str, user: &str) -> bool {
    if user.is_empty() {
        return false;
    }
    let eq = |a: &str| a.eq_ignore_ascii_case(user);
    fn after_prefix<'s>(s: &'s str, p: &str) -> Option<&'s str> {
        s.get(..p.len())
            .filter(|h| h.eq_ignore_ascii_case(p))
            .map(|_| &s[p.len()..])
    }
    const PUNCT: &[char] = &[',', ':', ';', '!', '?', '-'];
    let reply = ["re:", "fw:"].iter().find_map(|p| after_prefix(subject, p));
    if let Some(rest) = reply.map(str::trim_start) {
        let word_end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let after_word = &rest[word_end..];
        if eq(rest)
            || (word_end > 0
                && after_word.starts_with(char::is_whitespace)
                && eq(after_word.trim_start()))
        {
            return true;
        }
    }
    if let Some(rest) = subject.strip_prefix(user) {
        let rest = rest.trim_start();
        let mut chars = rest.chars();
        if chars.next().is_some_and(|c| PUNCT.contains(&c))
            && chars.next().is_none_or(char::is_whitespace)
        {
            return true;
        }
    }
    if eq(subject) {
        return true;
    }
    subject.strip_prefix(',').is_some_and(|rest| {
        let rest = rest.trim_start();
        rest.ends_with(PUNCT)
            && rest
                .get(..rest.len() - 1)
                .is_some_and(|u| u.eq_ignore_ascii_case(user))
    })
}

/// A field other than the address and identity fields still holding a mailer's template
/// placeholder (`%FIRSTNAME`, `%SOME_TAG`).
fn unresolved_template(ctx: &Ctx, _: &[String]) -> bool {
    static PLACEHOLDER: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| crate::spam::builtin_regex(r"%[A-Z][A-Z_-]"));
    static EXEMPT: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        crate::spam::builtin_regex(
            r"(?i)^(?:X-VMS-To|X-UIDL|X-Face|To|Cc|From|Subject|References|In-Reply-To|(?:X-|Resent-|X-Original-)?Message-Id):",
        )
    });
    value(ctx, "ALL")
        .lines()
        .any(|l| PLACEHOLDER.is_match(l) && !EXEMPT.is_match(l))
}

/// A ratware's Message-ID: 28 capitals, a dot, then the address From: shows after a quoted
/// name.
fn ratware_name_id(ctx: &Ctx, _: &[String]) -> bool {
    static ID: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| crate::spam::builtin_regex(r"<[A-Z]{28}\.([^>]+?)>"));
    let id = value(ctx, "MESSAGEID");
    let Some(tail) = ID.captures(&id).map(|c| c[1].to_string()) else {
        return false;
    };
    let from = format!(r#""[^"]+"\s*<{}>"#, regex::escape(&tail));
    regex::Regex::new(&from).is_ok_and(|re| re.is_match(&value(ctx, "From")))
}

/// An envelope sender made of the recipient's domain, any character and the recipient's
/// local part (`example.com.bob@...` for bob@example.com); SRS addresses excepted.
fn ratware_envelope_from(ctx: &Ctx, _: &[String]) -> bool {
    let to = value(ctx, "To:addr");
    let from = value(ctx, "EnvelopeFrom:addr");
    let (to, from) = (to.trim(), from.trim());
    if to.is_empty() || from.is_empty() || is_srs(from) {
        return false;
    }
    let Some((user, dom)) = to.split_once('@') else {
        return false;
    };
    if user.is_empty() || dom.is_empty() {
        return false;
    }
    let dom = registrable(&dom.to_ascii_lowercase(), ctx);
    if !super::valid_tld(&dom, ctx.lists) {
        return false;
    }
    // `\bDOM.USER@`, ignoring case, found by hand (a regex per message cost 0.2 ms).
    let (from, dom, user) = (
        from.to_ascii_lowercase(),
        dom.to_ascii_lowercase(),
        user.to_ascii_lowercase(),
    );
    let tail = format!("{user}@");
    from.match_indices(dom.as_str()).any(|(i, _)| {
        let boundary = from[..i]
            .chars()
            .last()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let rest = &from[i + dom.len()..];
        let mut chars = rest.chars();
        boundary && chars.next().is_some() && chars.as_str().starts_with(&tail)
    })
}

fn is_srs(addr: &str) -> bool {
    let b = addr.as_bytes();
    b.len() > 4
        && b[..3].eq_ignore_ascii_case(b"srs")
        && b[3].is_ascii_digit()
        && b[4..]
            .iter()
            .find(|c| !c.is_ascii_digit())
            .is_some_and(|c| matches!(c, b'=' | b'+' | b'-'))
}

/// Mail whose Received fields were taken off on the way: none at all, or only MSN Groups'
/// own, or an ezmlm list run through a gateway that leaves only its qmail line.
fn gated_through_received_hdr_remover(ctx: &Ctx, _: &[String]) -> bool {
    static EZMLM: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        crate::spam::builtin_regex(r"(?m)^contact \S+@\S+; run by ezmlm$")
    });
    static LIST_DLTO: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| crate::spam::builtin_regex(r"(?m)^mailing list \S+@\S+"));
    static QMAIL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        crate::spam::builtin_regex(r"qmail \d+ invoked (?:from network|by .{3,20})\); \d+ ... \d+")
    });
    let Some(rcvd) = ctx.view.header("Received") else {
        return true;
    };
    let list = ctx.view.header("Mailing-List").unwrap_or_default();
    if EZMLM.is_match(&list)
        && LIST_DLTO.is_match(&value(ctx, "Delivered-To"))
        && QMAIL.is_match(&rcvd)
    {
        return true;
    }
    rcvd.contains("from groups.msn.com (") && {
        static MSN: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
            crate::spam::builtin_regex(r"from groups\.msn\.com \(\S+\.msn\.com ")
        });
        MSN.is_match(&rcvd)
    }
}

/// From: a Gmail address, but none of the fields Gmail's servers add: no internal
/// `X-Received` hop, no submission through smtp.googlemail.com, and not both of the long
/// `X-Gm-Message-State` and `X-Google-Smtp-Source` values.
fn forged_gmail(ctx: &Ctx, _: &[String]) -> bool {
    static INTERNAL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        crate::spam::builtin_regex(
            r"by 10\.\S+ with SMTP id \S+|by 2002:a\d\d:\w+:\S+ with SMTP id \S+",
        )
    });
    static SUBMITTED: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        crate::spam::builtin_regex(r"by smtp\.googlemail\.com with ESMTPSA id \S+")
    });
    /// Shorter values than Gmail's (both are ~60 characters and more) are made up.
    const GOOGLE_FIELD_MIN: usize = 60;
    let from = value(ctx, "From:addr");
    let from = from.trim();
    let b = from.as_bytes();
    // `\bgmail\.com$`: the name starts a word.
    let gmail = b.len() >= 9
        && b[b.len() - 9..].eq_ignore_ascii_case(b"gmail.com")
        && b[..b.len() - 9]
            .last()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || *c == b'_'));
    if !gmail
        || INTERNAL.is_match(&value(ctx, "X-Received"))
        || SUBMITTED.is_match(&value(ctx, "Received"))
    {
        return false;
    }
    let len = |f: &str| value(ctx, f).trim_end_matches('\n').len();
    !(len("X-Gm-Message-State") >= GOOGLE_FIELD_MIN
        && len("X-Google-Smtp-Source") >= GOOGLE_FIELD_MIN)
}
