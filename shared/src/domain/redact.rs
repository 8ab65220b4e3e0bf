//! Strings that must never reach a response or a log line.
//!
//! Their `Debug` and `Display` print a fixed redaction, so a `?session` in a
//! tracing macro or a `{:?}` in an error message cannot leak them. The value is
//! reachable only through `expose()`, which makes every use greppable.

use std::fmt;

macro_rules! redacted_string {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The secret itself. Use it only to compute or to send to its owner.
            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("<redacted>")
            }
        }
    };
}

redacted_string!(
    /// WeChat's per-user `session_key` (base64 of 16 bytes), the key to the user's
    /// encrypted data and signatures.
    SessionKey
);

redacted_string!(
    /// The mini-program's appsecret: whoever holds it can act as the app.
    AppSecret
);

redacted_string!(
    /// A WeChat access token: it authorises server APIs for the whole app.
    AccessToken
);

/// An openid as logs show it: a short tag of its SHA-256, the same for one user
/// in every line and every function, so lines correlate; different users get
/// different tags (an app's openids share their first characters, so a prefix
/// would not tell them apart). Not the openid, nor a prefix of it.
pub fn mask_openid(openid: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(openid.as_bytes());
    format!("u-{}", hex::encode(&digest[..5]))
}

/// A phone number shortened for logs: the last four digits only.
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().collect();
    let tail: String = digits[digits.len().saturating_sub(4)..].iter().collect();
    format!("***{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let key = SessionKey::new("tiihtNczf5v6AKRyjwEUhQ==");
        let secret = AppSecret::new("0123456789abcdef0123456789abcdef");
        for shown in [
            format!("{key:?}"),
            format!("{key}"),
            format!("{secret:?}"),
            format!("{secret}"),
            format!("{:?}", Some(&key)),
        ] {
            assert!(!shown.contains("tiihtNczf5v6AKRyjwEUhQ"), "{shown}");
            assert!(!shown.contains("0123456789abcdef"), "{shown}");
            assert!(shown.contains("redacted"), "{shown}");
        }
        assert_eq!(key.expose(), "tiihtNczf5v6AKRyjwEUhQ==");
    }

    #[test]
    fn masks_keep_only_a_prefix_or_suffix() {
        // Stable, short, and apart for openids that share a prefix.
        let tag = mask_openid("oGZUI0egBJY1zhBYw2KhdUfwVJJE");
        assert_eq!(tag, mask_openid("oGZUI0egBJY1zhBYw2KhdUfwVJJE"));
        assert_eq!(tag.len(), 12);
        assert!(tag.starts_with("u-") && !tag.contains("oGZU"), "{tag}");
        assert_ne!(tag, mask_openid("oGZUI0egBJY1zhBYw2KhdUfwVJJF"));
        // echo -n oGZUI0egBJY1zhBYw2KhdUfwVJJE | sha256sum, first 5 bytes.
        assert_eq!(tag, "u-8312f09bb3");
        assert_eq!(mask_phone("+86 13580006666"), "***6666");
        assert_eq!(mask_phone("12"), "***12");
    }
}
