//! `mail_id` and `secret_id` as amavisd-new makes and checks them.
//!
//! amavisd-new draws a random secret (72 bits by default, `$mail_id_size_bits`), publishes it
//! base64url-encoded as `secret_id`, and derives the public `mail_id` as the first 12 base64url
//! characters of MD5(secret). A release request proves it may release by presenting the secret,
//! which is checked by recomputing the mail_id. Keeping the scheme lets existing quarantine front
//! ends and Debian's `amavisd-release` work with our ids.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use md5::{Digest, Md5};

/// The pair of ids for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailIds {
    /// Public id: in logs, `X-Quarantine-ID`, SQL `msgs.mail_id`, quarantine file names.
    pub mail_id: String,
    /// Secret that authorises a release; SQL `msgs.secret_id`.
    pub secret_id: String,
}

const SECRET_BYTES: usize = 9; // 72 bits, a multiple of 24 so base64 has no padding

fn mail_id_of(secret: &[u8]) -> String {
    let digest = Md5::digest(secret);
    let mut id = URL_SAFE_NO_PAD.encode(digest);
    id.truncate(SECRET_BYTES * 4 / 3);
    id
}

/// Draws fresh ids. A mail_id that starts or ends with `-` or `_` is redrawn: it would read as
/// an option on a command line (`amavisd-release -x...`), and amavisd-release recognises a
/// quarantine file name (`banned-MAILID`) only when the mail_id starts and ends with a letter
/// or digit.
pub fn generate_mail_id() -> Result<MailIds, getrandom::Error> {
    loop {
        let mut secret = [0u8; SECRET_BYTES];
        getrandom::fill(&mut secret)?;
        let mail_id = mail_id_of(&secret);
        let b = mail_id.as_bytes();
        if !b.first().is_some_and(u8::is_ascii_alphanumeric)
            || !b.last().is_some_and(u8::is_ascii_alphanumeric)
        {
            continue;
        }
        return Ok(MailIds {
            mail_id,
            secret_id: URL_SAFE_NO_PAD.encode(secret),
        });
    }
}

/// True when `secret_id` is the secret behind `mail_id`.
pub fn check_secret(mail_id: &str, secret_id: &str) -> bool {
    match URL_SAFE_NO_PAD.decode(secret_id.trim_end_matches('=')) {
        Ok(secret) => mail_id_of(&secret) == mail_id,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_12_chars_and_check() {
        for _ in 0..200 {
            let ids = generate_mail_id().unwrap();
            assert_eq!(ids.mail_id.len(), 12);
            assert_eq!(ids.secret_id.len(), 12);
            let b = ids.mail_id.as_bytes();
            assert!(b[0].is_ascii_alphanumeric() && b[11].is_ascii_alphanumeric());
            assert!(check_secret(&ids.mail_id, &ids.secret_id));
            assert!(!check_secret(&ids.mail_id, "AAAAAAAAAAAA"));
        }
    }

    #[test]
    fn known_vector() {
        // MD5 of nine zero bytes, base64url, first 12 characters.
        let secret = [0u8; 9];
        let d = Md5::digest(secret);
        let expect = &URL_SAFE_NO_PAD.encode(d)[..12];
        assert_eq!(mail_id_of(&secret), expect);
        assert!(check_secret(expect, "AAAAAAAAAAAA"));
        assert!(!check_secret(expect, "not base64!"));
    }
}
