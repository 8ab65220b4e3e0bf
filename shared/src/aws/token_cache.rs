//! `TokenCache` in the session table. The token item is
//! `pk = wxauth#access-token#<appid>` with `accessToken` and `expiresAt`; a claim
//! is `pk = wxauth#access-token#<appid>#<force|fetch>` with `expiresAt` when it
//! lapses. Session keys are 64 hex digits, so none of these can collide with one,
//! and the TTL attribute clears them away like sessions.

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;

use super::DynamoSessionStore;
use crate::access_token::{CachedToken, Claim, TokenCache};
use crate::redact::AccessToken;
use crate::session::StoreError;

/// The prefix of every access-token item (the template's IAM condition names it).
pub const ACCESS_TOKEN_PREFIX: &str = "wxauth#access-token#";

fn token_pk(appid: &str) -> String {
    format!("{ACCESS_TOKEN_PREFIX}{appid}")
}

fn unavailable<E, R>(err: &SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Unavailable(DisplayErrorContext(err).to_string())
}

/// Runs a conditional put: `Ok(false)` when the condition refused it.
async fn put_if(
    put: aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder,
) -> Result<bool, StoreError> {
    match put.send().await {
        Ok(_) => Ok(true),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Ok(false)
        }
        Err(err) => Err(unavailable(&err)),
    }
}

impl TokenCache for DynamoSessionStore {
    async fn load_token(&self, appid: &str) -> Result<Option<CachedToken>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(token_pk(appid)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| unavailable(&err))?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let token = item.get("accessToken").and_then(|v| v.as_s().ok());
        let expires_at = item
            .get("expiresAt")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok());
        match (token, expires_at) {
            (Some(token), Some(expires_at)) => Ok(Some(CachedToken {
                token: AccessToken::new(token.clone()),
                expires_at,
            })),
            _ => Err(StoreError::Malformed("access token item".into())),
        }
    }

    async fn save_token(&self, appid: &str, token: &CachedToken) -> Result<(), StoreError> {
        let expires_at = AttributeValue::N(token.expires_at.to_string());
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(token_pk(appid)))
            .item(
                "accessToken",
                AttributeValue::S(token.token.expose().to_owned()),
            )
            .item("expiresAt", expires_at.clone())
            .condition_expression("attribute_not_exists(pk) OR expiresAt <= :expiresAt")
            .expression_attribute_values(":expiresAt", expires_at);
        // Refused: the table already holds a token that lasts longer; keep it.
        put_if(put).await.map(|_| ())
    }

    async fn try_claim(
        &self,
        appid: &str,
        claim: Claim,
        now: i64,
        hold_seconds: i64,
    ) -> Result<bool, StoreError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(
                "pk",
                AttributeValue::S(format!("{}#{}", token_pk(appid), claim.as_str())),
            )
            .item(
                "expiresAt",
                AttributeValue::N((now + hold_seconds).to_string()),
            )
            .condition_expression("attribute_not_exists(pk) OR expiresAt <= :now")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()));
        put_if(put).await
    }
}
