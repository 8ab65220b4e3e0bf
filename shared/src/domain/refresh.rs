//! Refresh tokens: what the client keeps to renew its login state without
//! WeChat, the one-way key the table keeps, and the family a login starts.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::domain::redact::SessionKey;

const REFRESH_BYTES: usize = 32;
/// What `POST /refresh` accepts: the 43 characters we issue, and room for a
/// longer token should the size ever grow.
pub const MIN_REFRESH_CHARS: usize = 43;
pub const MAX_REFRESH_CHARS: usize = 128;
/// A family id: 144 bits, base64url.
const FAMILY_CHARS: usize = 24;
/// The refresh item's key prefix (its key is `refresh#<SHA-256 hex>`).
pub const REFRESH_PREFIX: &str = "refresh#";
/// The session_key a family's login keeps (`sessionkey#<family>`).
pub const KEPT_KEY_PREFIX: &str = "sessionkey#";
/// Refresh families one login revokes at most beyond the expired ones' first
/// (the rest go with later logins): their deletions share the login's
/// transaction, which holds at most 100 items.
pub const FAMILIES_REVOKED_AT_MOST: usize = 8;

/// Which of a user's refresh families (`(family, expiresAt of its newest
/// token)`) a login revokes when the user may keep several sessions: the
/// expired ones, and the live ones ending soonest beyond
/// `MAX_SESSIONS_PER_USER - 1`, as with sessions. Each login starts a family
/// that lives 30 days by default, so without this bound what an account lists
/// (and every login reads) would grow with every login until the item reached
/// DynamoDB's 400 KB limit. Soonest ending first, at most
/// `FAMILIES_REVOKED_AT_MOST`.
pub fn families_a_login_revokes<K: Clone>(families: &[(K, i64)], now: i64) -> Vec<(K, i64)> {
    let mut revoked = crate::domain::session::sessions_a_login_removes(families, now, false);
    revoked.truncate(FAMILIES_REVOKED_AT_MOST);
    revoked
}

/// The refresh token handed to the client. Never logged, never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken(String);

impl RefreshToken {
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; REFRESH_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// A token of `family`: the family's id (24 characters) and 256 random
    /// bits (43), 67 base64url characters. Naming the family lets a refresh
    /// read the token's item and the family's kept session_key at once; the
    /// family must still match the stored item.
    pub fn issue(family: &RefreshFamily) -> Result<Self, getrandom::Error> {
        Ok(Self(format!("{}{}", family.as_str(), Self::generate()?.0)))
    }

    /// The family a token issued by `issue` names (unchecked: the stored
    /// item decides).
    pub fn family_hint(&self) -> Option<RefreshFamily> {
        (self.0.len() == FAMILY_CHARS + MIN_REFRESH_CHARS)
            .then(|| RefreshFamily(self.0[..FAMILY_CHARS].to_owned()))
    }

    /// 43 to 128 characters of the base64url alphabet (no padding), or
    /// nothing. Only the shape: whether the characters also decode (their
    /// count and trailing bits) is not the client's concern, and an unknown
    /// token is the store's to refuse (401), whatever the settings.
    pub fn parse(text: &str) -> Option<Self> {
        let shaped = (MIN_REFRESH_CHARS..=MAX_REFRESH_CHARS).contains(&text.len())
            && text
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
        shaped.then(|| Self(text.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The table key: SHA-256 of the token, lowercase hex.
    pub fn key(&self) -> RefreshKey {
        RefreshKey(hex::encode(Sha256::digest(self.0.as_bytes())))
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken(<redacted>)")
    }
}

/// A refresh token's one-way key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RefreshKey(String);

impl RefreshKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn from_stored(text: String) -> Self {
        Self(text)
    }
}

/// Every refresh token descended from one login, and the sessions made from
/// them: revoked together.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RefreshFamily(String);

impl RefreshFamily {
    /// 144 random bits, base64url: 24 characters, a whole number of base64
    /// quanta, so that a token it prefixes is still one base64url string.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 18];
        getrandom::fill(&mut bytes)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `REFRESH_TTL_SECONDS` and `REFRESH_REUSE_GRACE_SECONDS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshSettings {
    /// 0: refresh tokens are off.
    pub ttl_seconds: i64,
    /// A spent token presented again less than this many seconds after its
    /// first use still refreshes; 0: never.
    pub grace_seconds: i64,
}

impl RefreshSettings {
    pub const OFF: Self = Self {
        ttl_seconds: 0,
        grace_seconds: 30,
    };

    pub fn enabled(&self) -> bool {
        self.ttl_seconds > 0
    }
}

impl Default for RefreshSettings {
    fn default() -> Self {
        Self {
            ttl_seconds: 2_592_000,
            grace_seconds: 30,
        }
    }
}

/// The session_key a login keeps for its family, until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptSessionKey {
    pub session_key: SessionKey,
    pub expires_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_revokes_expired_families_and_the_oldest_beyond_the_bound() {
        use crate::domain::session::MAX_SESSIONS_PER_USER;
        let now = 1000;
        // Two expired, then MAX live: the expired and the soonest ending live
        // one go, so MAX - 1 stay beside the family the login starts.
        let families: Vec<(usize, i64)> = (0..MAX_SESSIONS_PER_USER + 2)
            .map(|i| (i, now - 1 + i as i64))
            .collect();
        let revoked: Vec<usize> = families_a_login_revokes(&families, now)
            .into_iter()
            .map(|(family, _)| family)
            .collect();
        assert_eq!(revoked, [0, 1, 2]);
        // However many an account lists (one written before the bound), a
        // login's transaction revokes at most FAMILIES_REVOKED_AT_MOST.
        let many: Vec<(usize, i64)> = (0..500).map(|i| (i, now + 1 + i as i64)).collect();
        let revoked = families_a_login_revokes(&many, now);
        assert_eq!(revoked.len(), FAMILIES_REVOKED_AT_MOST);
        assert_eq!(revoked[0], (0, now + 1));
        assert!(families_a_login_revokes(&many[..MAX_SESSIONS_PER_USER - 1], now).is_empty());
    }

    #[test]
    fn tokens_are_43_chars_and_parse_takes_43_to_128_base64url() {
        let token = RefreshToken::generate().unwrap();
        assert_eq!(token.expose().len(), 43);
        assert_eq!(RefreshToken::parse(token.expose()), Some(token.clone()));
        assert_ne!(token, RefreshToken::generate().unwrap());
        assert!(RefreshToken::parse(&"A".repeat(128)).is_some());
        for bad in [
            "".to_owned(),
            "A".repeat(42),
            "A".repeat(129),
            format!("{}+", "A".repeat(42)),
            format!("{}=", "A".repeat(43)),
            format!("{} ", "A".repeat(43)),
        ] {
            assert_eq!(RefreshToken::parse(&bad), None, "{bad:?}");
        }
        // The alphabet and the length are the shape: 4k+1 characters and
        // non-zero trailing bits are well-formed tokens we never issued.
        for unknown in ["A".repeat(45), "x".repeat(43), "_".repeat(128)] {
            assert!(RefreshToken::parse(&unknown).is_some(), "{unknown}");
        }
        assert!(!format!("{token:?}").contains(token.expose()));
    }

    #[test]
    fn an_issued_token_names_its_family() {
        let family = RefreshFamily::generate().unwrap();
        let token = RefreshToken::issue(&family).unwrap();
        assert_eq!(token.expose().len(), 67);
        assert_eq!(RefreshToken::parse(token.expose()), Some(token.clone()));
        assert_eq!(token.family_hint(), Some(family));
        assert_eq!(RefreshToken::generate().unwrap().family_hint(), None);
    }

    #[test]
    fn the_key_is_the_sha256_hex_of_the_token() {
        let token = RefreshToken::parse(&"A".repeat(43)).unwrap();
        assert_eq!(
            token.key().as_str(),
            "0f007385b6f9d4b7eeb2748605afe1a984a0a3bfa3f014d09e2a784ce9e5cd1a"
        );
    }
}
