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

/// An openid shortened for logs: enough to correlate lines, not to identify a user.
pub fn mask_openid(openid: &str) -> String {
    let head: String = openid.chars().take(4).collect();
    format!("{head}***")
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
        assert_eq!(mask_openid("oGZUI0egBJY1zhBYw2KhdUfwVJJE"), "oGZU***");
        assert_eq!(mask_openid("ab"), "ab***");
        assert_eq!(mask_phone("+86 13580006666"), "***6666");
        assert_eq!(mask_phone("12"), "***12");
    }
}
