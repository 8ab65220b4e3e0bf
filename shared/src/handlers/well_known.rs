//! `GET /.well-known/jwks.json` and `GET /.well-known/openid-configuration`:
//! what any JOSE library (and API Gateway's JWT authorizer) needs to check
//! our tokens offline. 404 without `ISSUER`.

use serde_json::json;
use tracing::warn;

use crate::domain::time::epoch_millis;
use crate::edge::error::ApiError;
use crate::edge::request::ApiResponse;
use crate::ports::errors::Upstream;
use crate::ports::keys::PublicKeyStore;
use crate::services::access::TokenCheck;

/// The key set changes only with a rotation, which publishes the new key two
/// hours before it signs: five minutes of caching is safe.
const CACHE_CONTROL: &str = "public, max-age=300";

pub async fn jwks(
    store: &impl PublicKeyStore,
    tokens: &TokenCheck,
) -> Result<ApiResponse, ApiError> {
    if tokens.settings().is_none() {
        return Err(ApiError::NotFound);
    }
    let keys = tokens
        .keys()
        .all(store, epoch_millis())
        .await
        .map_err(|err| {
            warn!(error = %err, "reading the published keys failed");
            ApiError::Unavailable(Upstream::SessionTable)
        })?;
    let keys: Vec<_> = keys.iter().map(|published| published.key.jwk()).collect();
    Ok(ApiResponse::json(200, &json!({ "keys": keys }))
        .with_header("cache-control", CACHE_CONTROL.to_owned()))
}

pub fn openid_configuration(tokens: &TokenCheck) -> Result<ApiResponse, ApiError> {
    let settings = tokens.settings().ok_or(ApiError::NotFound)?;
    let body = json!({
        "issuer": settings.issuer,
        "jwks_uri": format!("{}/.well-known/jwks.json", settings.issuer),
        "id_token_signing_alg_values_supported": ["RS256"],
        "subject_types_supported": ["public"],
        "response_types_supported": ["token"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "openid", "unionid", "appid", "sid"],
    });
    Ok(ApiResponse::json(200, &body).with_header("cache-control", CACHE_CONTROL.to_owned()))
}
