//! The eval functions added for agreement with SpamAssassin 4 (issue 24): each one on a
//! message that should hit it and on one that should not.

use super::{Ctx, Lists, parse, run};
use crate::spam::view::MessageView;
use std::collections::BTreeMap;

fn with(lists: &Lists, msg: &str, envelope_from: &str, call: &str) -> bool {
    let view = MessageView::new(msg.as_bytes(), envelope_from);
    let ctx = Ctx {
        view: &view,
        lists,
        bayes: None,
    };
    run(&parse(call).expect("call"), &ctx)
}

fn hits(msg: &str, call: &str) -> bool {
    with(&Lists::default(), msg, "", call)
}

fn lists(entries: &[(&str, &[&str])]) -> Lists {
    let mut m = BTreeMap::new();
    for (k, v) in entries {
        m.insert(k.to_string(), v.iter().map(|s| s.to_string()).collect());
    }
    Lists::new(m)
}

#[test]
fn envelope_and_from_match() {
    let m = "From: Bob <Bob@Example.com>\nSubject: x\n\nx\n";
    let l = Lists::default();
    assert!(with(
        &l,
        m,
        "bob@example.com",
        "eval:check_for_matching_env_and_hdr_from()"
    ));
    assert!(!with(
        &l,
        m,
        "other@example.com",
        "eval:check_for_matching_env_and_hdr_from()"
    ));
}

#[test]
fn recipient_in_subject() {
    let msg = |s: &str| format!("To: bob@example.com\nSubject: {s}\n\nx\n");
    assert!(hits(
        &msg("bob: your offer"),
        "eval:check_for_to_in_subject('user')"
    ));
    assert!(hits(
        &msg("Re: hello bob"),
        "eval:check_for_to_in_subject('user')"
    ));
    assert!(!hits(
        &msg("Bob: a name, not the user"),
        "eval:check_for_to_in_subject('user')"
    ));
    assert!(!hits(
        &msg("meeting notes"),
        "eval:check_for_to_in_subject('user')"
    ));
    let user = "eval:check_for_to_in_subject('user')";
    assert!(hits(&msg("FW: news BOB"), user));
    assert!(hits(&msg(", Bob!"), user));
    assert!(hits(&msg("bob"), user));
    assert!(!hits(&msg("bobby: hi"), user));
    assert!(!hits(&msg("Re: two words bob"), user));
    assert!(hits(
        &msg("for bob@example.com"),
        "eval:check_for_to_in_subject('address')"
    ));
}

#[test]
fn template_left_unfilled() {
    let call = "eval:check_unresolved_template()";
    assert!(hits("X-Campaign: %CAMPAIGN_ID\nSubject: x\n\nx\n", call));
    assert!(!hits("Subject: 50%OFF %NAME\n\nx\n", call));
    assert!(!hits("X-Campaign: 50% off\n\nx\n", call));
}

#[test]
fn ratware_ids_and_senders() {
    let id = "Message-ID: <ABCDEFGHIJKLMNOPQRSTUVWXYZAB.bob@spam.example>\n";
    let m = format!("{id}From: \"Bob\" <bob@spam.example>\n\nx\n");
    assert!(hits(&m, "eval:check_ratware_name_id()"));
    let other = format!("{id}From: \"Bob\" <alice@spam.example>\n\nx\n");
    assert!(!hits(&other, "eval:check_ratware_name_id()"));
    let tld = lists(&[("util_rb_tld", &["com"])]);
    let to = "To: bob@example.com\n\nx\n";
    let call = "eval:check_ratware_envelope_from()";
    assert!(with(&tld, to, "example.com-bob@ratware.example", call));
    assert!(!with(&tld, to, "bob@example.com", call));
    assert!(!with(
        &tld,
        to,
        "SRS0=ab=cd=example.com=bob@fwd.example",
        call
    ));
}

#[test]
fn received_fields_taken_off() {
    let call = "eval:gated_through_received_hdr_remover()";
    assert!(hits("Subject: x\n\nx\n", call));
    assert!(!hits(
        "Received: from a (a [192.0.2.1]) by b; Thu, 1 Jan 2002\n\nx\n",
        call
    ));
}

#[test]
fn gmail_without_gmail_fields() {
    let call = "eval:check_for_forged_gmail_received_headers()";
    assert!(hits(
        "From: x@gmail.com\nReceived: from a by b\n\nx\n",
        call
    ));
    let real = "From: x@gmail.com\nX-Received: by 10.1.2.3 with SMTP id abc\n\nx\n";
    assert!(!hits(real, call));
    assert!(!hits("From: x@notgmail.com.example\n\nx\n", call));
    assert!(!hits(
        "From: ü@gmail.com\nX-Received: by 10.1.2.3 with SMTP id a\n\nx\n",
        call
    ));
}

#[test]
fn base64_line_lengths() {
    let m = |line: &str| {
        format!("Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n{line}\n{line}\n")
    };
    let wrapped = "QUJD".repeat(19); // 76 characters
    assert!(!hits(&m(&wrapped), "eval:check_base64_length('78','79')"));
    let long = format!("{wrapped}QU"); // 78 with the line break... 79
    assert!(hits(&m(&long), "eval:check_base64_length('79')"));
}

#[test]
fn text_sent_as_base64() {
    let m = |ct: &str, cd: &str| {
        format!("Content-Type: {ct}\n{cd}Content-Transfer-Encoding: base64\n\naGVsbG8=\n")
    };
    let call = "eval:check_for_mime('mime_base64_encoded_text')";
    assert!(hits(&m("text/plain; charset=us-ascii", ""), call));
    assert!(!hits(&m("text/plain; charset=utf-8", ""), call));
    assert!(!hits(
        &m("text/plain", "Content-Disposition: attachment\n"),
        call
    ));
}

#[test]
fn unicode_entities_in_plain_text() {
    let call = "eval:check_abundant_unicode_ratio(0.05)";
    let dense = "Content-Type: text/plain\n\n&#x0420;&#x0435;&#x043A; ok\n";
    assert!(hits(dense, call));
    assert!(!hits(
        "Content-Type: text/plain\n\nplain words only, nothing else\n",
        call
    ));
    assert!(!hits(dense, "eval:check_abundant_unicode_ratio('x')"));
}

const ALT: &str = "MIME-Version: 1.0\nSubject: s\nContent-Type: multipart/alternative; boundary=b\n\n\
--b\nContent-Type: text/plain\n\n{TEXT}\n--b\nContent-Type: text/html\n\n{HTML}\n--b--\n";

fn alt(text: &str, html: &str) -> String {
    ALT.replace("{TEXT}", text).replace("{HTML}", html)
}

#[test]
fn alternatives_that_differ() {
    let same = alt("buy cheap pills now", "<p>buy cheap pills now</p>");
    let differ = alt("hello", "<p>buy cheap pills now</p>");
    let call = "eval:multipart_alternative_difference('99', '100')";
    assert!(!hits(&same, call));
    assert!(hits(&differ, call));
    assert!(hits(
        &same,
        "eval:multipart_alternative_difference('0', '1')"
    ));
    let count = "eval:multipart_alternative_difference_count('3', '1')";
    assert!(hits(&alt("a b c d e f g h i", "<p>one two</p>"), count));
    assert!(!hits(&same, count));
}

#[test]
fn text_far_shorter_than_html() {
    let call = "eval:check_mime_multipart_ratio('0.00','0.01')";
    let long_html = format!("<p>{}</p>", "words ".repeat(500));
    assert!(hits(&alt("", &long_html), call));
    assert!(!hits(
        &alt("words words words", "<p>words words words</p>"),
        call
    ));
    assert!(!hits("Subject: s\n\nno alternative\n", call));
}

#[test]
fn words_spread_with_spaces() {
    let call = "eval:tvd_vertical_words('0','10')";
    assert!(!hits("Subject: s\n\nV I A G R A  N O W\n", call));
    assert!(hits("Subject: s\n\nordinary words\n", call));
    assert!(hits(
        "Subject: s\n\nV I A G R A  N O W\n",
        "eval:tvd_vertical_words('10','100')"
    ));
}

fn image_message(b64: &str) -> String {
    format!(
        "Subject: s\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n\
         hi\n--b\nContent-Type: image/gif\nContent-Transfer-Encoding: base64\n\n{b64}\n--b--\n"
    )
}

#[test]
fn image_areas_and_text() {
    // A GIF header saying 500 x 400.
    let gif = "R0lGODlh9AGQAQAAAAAA";
    let m = image_message(gif);
    assert!(hits(&m, "eval:pixel_coverage('gif','180000','475000')"));
    assert!(!hits(&m, "eval:pixel_coverage('png','180000','475000')"));
    assert!(hits(
        &m,
        "eval:image_to_text_ratio('all', '0.000', '0.015')"
    ));
    assert!(hits(&m, "eval:image_count('gif',1,1)"));
    assert!(!hits(
        "Subject: s\n\nno image\n",
        "eval:pixel_coverage('all',62500,300000)"
    ));
}

#[test]
fn html_title_and_links() {
    let html =
        |body: &str| format!("Subject: Hi\nContent-Type: text/html\n\n<html><head>{body}</html>\n");
    let title = html("<title>A very long title for a short subject</title></head><body>x</body>");
    assert!(hits(&title, "eval:html_title_subject_ratio('3.5')"));
    assert!(!hits(
        &html("<title>Hi</title></head>"),
        "eval:html_title_subject_ratio('3.5')"
    ));
    let tld = lists(&[("util_rb_tld", &["com", "example"])]);
    let phish =
        html(r#"<body><a href="http://evil.example/login">https://www.bank.com/</a></body>"#);
    let call = "eval:check_https_http_mismatch('1','10')";
    assert!(with(&tld, &phish, "", call));
    let honest = html(r#"<body><a href="http://www.bank.com/x">https://www.bank.com/</a></body>"#);
    assert!(!with(&tld, &honest, "", call));
    let long = format!("Subject: s\n\nsee http://x.example/{}\n", "a".repeat(9000));
    assert!(hits(&long, "eval:check_uri_truncated()"));
    assert!(!hits(
        "Subject: s\n\nsee http://x.example/a\n",
        "eval:check_uri_truncated()"
    ));
}

#[test]
fn welcome_and_block_lists() {
    let l = lists(&[
        ("welcomelist_from", &["*@friend.example"]),
        ("blocklist_from", &["spammer@*"]),
        ("addrlist:BANKS", &["*@bank.example"]),
        ("uri_host:BAD", &["bad.example", "!ok.bad.example"]),
        ("def_welcomelist_from_rcvd", &["*@big.example big.example"]),
        ("welcomelist_subject", &["[bug *]"]),
        ("util_rb_tld", &["example", "top"]),
    ]);
    let from = |a: &str| format!("From: {a}\nSubject: x\n\nx\n");
    assert!(with(
        &l,
        &from("ann@friend.example"),
        "",
        "eval:check_from_in_welcomelist()"
    ));
    assert!(!with(
        &l,
        &from("ann@other.example"),
        "",
        "eval:check_from_in_welcomelist()"
    ));
    assert!(with(
        &l,
        &from("spammer@x.example"),
        "",
        "eval:check_from_in_blocklist()"
    ));
    assert!(with(
        &l,
        &from("a@bank.example"),
        "",
        "eval:check_from_in_list('BANKS')"
    ));
    let reply = "From: a@x.example\nReply-To: b@bank.example\n\nx\n";
    assert!(with(&l, reply, "", "eval:check_replyto_in_list('BANKS')"));
    let uri = |u: &str| format!("Subject: s\n\nsee {u}\n");
    let listed = "eval:check_uri_host_listed('BAD')";
    assert!(with(&l, &uri("http://www.bad.example/x"), "", listed));
    assert!(!with(&l, &uri("http://ok.bad.example/x"), "", listed));
    assert!(!with(&l, &uri("http://good.example/x"), "", listed));
    // A relative link is no host: `top` is not the listed top-level domain `top`.
    let top = lists(&[("uri_host:BAD", &["top"]), ("util_rb_tld", &["top"])]);
    let relative =
        "Content-Type: text/html\n\n<a href=\"top\">up</a> <a href=\"http://x.top/\">x</a>\n";
    assert!(with(&top, relative, "", listed));
    let only_relative = "Content-Type: text/html\n\n<a href=\"top\">up</a>\n";
    assert!(!with(&top, only_relative, "", listed));
    let relayed = |rdns: &str| {
        format!(
            "Received: from mx ({rdns} [192.0.2.1]) by in.example; Thu, 1 Jan 2002\n\
             From: news@big.example\n\nx\n"
        )
    };
    let def = "eval:check_from_in_default_welcomelist()";
    assert!(with(&l, &relayed("out.big.example"), "", def));
    assert!(!with(&l, &relayed("forged.example"), "", def));
    let subj = "Subject: [Bug 1234] crash\n\nx\n";
    assert!(with(&l, subj, "", "eval:check_subject_in_welcomelist()"));
    assert!(!with(&l, subj, "", "eval:have_any_bounce_relays()"));
    assert!(!with(
        &l,
        subj,
        "",
        "eval:check_welcomelist_bounce_relays()"
    ));
}

#[test]
fn far_charsets_only_when_locales_are_set() {
    let m = "Subject: =?koi8-r?B?8NLJ18XU?=\nContent-Type: text/plain; charset=koi8-r\n\n\
             \u{0416}\u{0416}\u{0416}\u{0416}\n";
    let all = Lists::default();
    assert!(!with(
        &all,
        m,
        "",
        "eval:check_for_faraway_charset_in_headers()"
    ));
    let en = lists(&[("ok_locales", &["en"])]);
    assert!(with(
        &en,
        m,
        "",
        "eval:check_for_faraway_charset_in_headers()"
    ));
    assert!(with(
        &en,
        m,
        "",
        "eval:check_for_mime('mime_faraway_charset')"
    ));
    let ru = lists(&[("ok_locales", &["en", "ru"])]);
    assert!(!with(
        &ru,
        m,
        "",
        "eval:check_for_faraway_charset_in_headers()"
    ));
}

#[test]
fn freemail_as_spamassassin_counts_it() {
    let l = lists(&[
        ("freemail_domains", &["free.example"]),
        ("util_rb_tld", &["example"]),
    ]);
    // The envelope sender counts for FREEMAIL_FROM; a role address never does.
    let m = "From: a@corp.example\nSubject: s\n\nx\n";
    assert!(with(
        &l,
        m,
        "bob@free.example",
        "eval:check_freemail_from()"
    ));
    assert!(!with(
        &l,
        m,
        "info@free.example",
        "eval:check_freemail_from()"
    ));
    // FREEMAIL_REPLY: a free mail From, and another free mail address in the body ...
    let reply = |body: &str| format!("From: bob@free.example\nSubject: s\n\n{body}\n");
    let call = "eval:check_freemail_replyto('reply')";
    assert!(with(&l, &reply("write to ann@free.example now"), "", call));
    // ... unless it is a quoted author, or the body names too many addresses to tell.
    assert!(!with(&l, &reply("ann@free.example wrote: hi"), "", call));
    let many = "a@x.example b@x.example c@x.example d@x.example ann@free.example";
    assert!(!with(&l, &reply(many), "", call));
    // A bounce's envelope sender: no reply test at all.
    assert!(!with(
        &l,
        &reply("write to ann@free.example now"),
        "bounce-1@lists.example",
        call
    ));
}
