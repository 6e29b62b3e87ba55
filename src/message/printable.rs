//! Peer text made safe before it is echoed in a reply or written to the log.

/// Peer text made safe to echo in a reply or a log line (Postfix's `printable()`).
pub fn printable(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(100)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().count() > 100 {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_become_question_marks_and_long_text_is_cut() {
        assert_eq!(printable("a\r\n250 ok\x1b"), "a??250 ok?");
        let long = "x".repeat(150);
        assert_eq!(printable(&long), format!("{}...", "x".repeat(100)));
        assert_eq!(printable("münchen"), "münchen");
    }
}
