//! Session tokens: what the client holds, and the one-way key the table holds.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// 256 bits: guessing is hopeless, and 43 characters fit any header.
const TOKEN_BYTES: usize = 32;
/// base64url without padding of 32 bytes.
pub const TOKEN_CHARS: usize = 43;

/// The bearer token handed to the mini-program. Never logged, never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl SessionToken {
    /// A fresh token from the OS CSPRNG.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Accepts exactly the shape `generate` produces, so anything else is refused
    /// before it costs a table read.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != TOKEN_CHARS {
            return None;
        }
        match URL_SAFE_NO_PAD.decode(text) {
            Ok(bytes) if bytes.len() == TOKEN_BYTES => Some(Self(text.to_owned())),
            _ => None,
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The table key: SHA-256 of the token, lowercase hex. A dump of the table
    /// yields no usable token.
    pub fn key(&self) -> TokenKey {
        TokenKey(hex::encode(Sha256::digest(self.0.as_bytes())))
    }

    /// The table key of a JWT session whose `sid` this is: SHA-256 in
    /// base64url, so that a `sid` read out of a JWT is never usable as an
    /// opaque token (whose key is the hex form).
    pub fn sid_key(&self) -> TokenKey {
        TokenKey(URL_SAFE_NO_PAD.encode(Sha256::digest(self.0.as_bytes())))
    }
}

/// A JWT has two dots; the opaque token none.
pub fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|&c| c == b'.').count() == 2
}

/// Longest JWT accepted in a header (ours are about 800 characters).
pub const MAX_JWT_CHARS: usize = 4096;

/// What an `Authorization: Bearer` header carries: our opaque token, or a JWT
/// (two dots), checked by `crate::services::access`.
#[derive(Clone, PartialEq, Eq)]
pub enum Bearer {
    Opaque(SessionToken),
    Jwt(String),
}

impl Bearer {
    /// The one rule for every route that needs a session and the authorizer.
    /// The scheme is case-insensitive; surrounding spaces are dropped.
    pub fn from_header(authorization: Option<&str>) -> Result<Self, BearerError> {
        let value = authorization
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or(BearerError::Missing)?;
        let (scheme, token) = value.split_once(' ').ok_or(BearerError::Malformed)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(BearerError::Malformed);
        }
        let token = token.trim();
        if looks_like_jwt(token) {
            let shaped = token.len() <= MAX_JWT_CHARS
                && token
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
            return shaped
                .then(|| Self::Jwt(token.to_owned()))
                .ok_or(BearerError::Malformed);
        }
        SessionToken::parse(token)
            .map(Self::Opaque)
            .ok_or(BearerError::Malformed)
    }
}

impl fmt::Debug for Bearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Opaque(_) => f.write_str("Bearer::Opaque(<redacted>)"),
            Self::Jwt(_) => f.write_str("Bearer::Jwt(<redacted>)"),
        }
    }
}

/// Why an Authorization header holds no usable token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    Missing,
    /// Not `Bearer` followed by a token of the shape `generate` makes.
    Malformed,
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

/// The session item's partition key, derived from a token by a one-way hash.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TokenKey(String);

impl TokenKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_43_url_safe_chars_and_distinct() {
        let a = SessionToken::generate().unwrap();
        let b = SessionToken::generate().unwrap();
        assert_eq!(a.expose().len(), TOKEN_CHARS);
        assert!(
            a.expose()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(a, b);
        assert_eq!(SessionToken::parse(a.expose()), Some(a));
    }

    #[test]
    fn key_is_sha256_hex_of_the_token() {
        let token = SessionToken::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        // printf %s AAAA...(43 A) | sha256sum
        assert_eq!(
            token.key().as_str(),
            "0f007385b6f9d4b7eeb2748605afe1a984a0a3bfa3f014d09e2a784ce9e5cd1a"
        );
    }

    #[test]
    fn parse_refuses_other_shapes() {
        for bad in [
            "",
            "short",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", // 42
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", // 44
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+", // standard alphabet
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA ",
        ] {
            assert_eq!(SessionToken::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn debug_hides_the_token() {
        let token = SessionToken::generate().unwrap();
        assert!(!format!("{token:?}").contains(token.expose()));
    }
}
