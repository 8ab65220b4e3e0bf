//! `TokenCache` in the session table. The token item is
//! `pk = wxauth#access-token#<appid>` with `accessToken` and `expiresAt`; the
//! fetch claim is `pk = …#fetch` with `expiresAt` when it lapses; the forced
//! refresh counter is `pk = …#forced` with the UTC `day`, `forcedToday` and
//! `windowEnds` (the end of the 30-s window). Session keys are 64 hex digits, so
//! none of these can collide with one, and the TTL attribute clears them away.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use super::DynamoSessionStore;
use super::table::{put_if, unavailable, update_if};
use crate::domain::redact::AccessToken;
use crate::ports::errors::StoreError;
use crate::ports::token_cache::{CachedToken, TokenCache, utc_day};

/// The prefix of every access-token item (the template's IAM condition names it).
pub const ACCESS_TOKEN_PREFIX: &str = "wxauth#access-token#";

fn token_pk(appid: &str) -> String {
    format!("{ACCESS_TOKEN_PREFIX}{appid}")
}

/// A token item's token and expiry.
fn cached_token(
    item: &std::collections::HashMap<String, AttributeValue>,
) -> Result<CachedToken, StoreError> {
    let token = item.get("accessToken").and_then(|v| v.as_s().ok());
    let expires_at = item
        .get("expiresAt")
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<i64>().ok());
    match (token, expires_at) {
        (Some(token), Some(expires_at)) => Ok(CachedToken {
            token: AccessToken::new(token.clone()),
            expires_at,
        }),
        _ => Err(StoreError::Malformed("access token item".into())),
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
        output.item.as_ref().map(cached_token).transpose()
    }

    async fn save_token(
        &self,
        appid: &str,
        token: &CachedToken,
    ) -> Result<CachedToken, StoreError> {
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
            .expression_attribute_values(":expiresAt", expires_at)
            // Refused: the table holds a token that lasts longer; the refusal
            // carries it, and that one is the one to use.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        match put.send().await {
            Ok(_) => Ok(token.clone()),
            Err(err) => match err.as_service_error() {
                Some(aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(refused)) => {
                    match refused.item() {
                        Some(item) => cached_token(item),
                        None => Ok(token.clone()),
                    }
                }
                _ => Err(unavailable(&err)),
            },
        }
    }

    async fn try_claim_fetch(
        &self,
        appid: &str,
        now: i64,
        hold_seconds: i64,
    ) -> Result<bool, StoreError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(
                "pk",
                AttributeValue::S(format!("{}#fetch", token_pk(appid))),
            )
            .item(
                "expiresAt",
                AttributeValue::N((now + hold_seconds).to_string()),
            )
            .condition_expression("attribute_not_exists(pk) OR expiresAt <= :now")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()));
        put_if(put).await
    }

    /// Today's counter, if it exists: one more when the window passed and the
    /// budget allows. Else the day's first: a fresh counter, unless today's
    /// exists or the last window is still open. Each is one conditional write,
    /// so two containers can never both take the same right.
    async fn try_claim_forced_refresh(
        &self,
        appid: &str,
        now: i64,
        interval_seconds: i64,
        per_day: i64,
    ) -> Result<bool, StoreError> {
        let pk = AttributeValue::S(format!("{}#forced", token_pk(appid)));
        let today = utc_day(now);
        let n = |value: i64| AttributeValue::N(value.to_string());
        let window_ends = n(now + interval_seconds);
        // Kept until the day after: the TTL clears yesterday's counters.
        let expires_at = n((today + 2) * 86_400);
        let next = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", pk.clone())
            .update_expression(
                "SET forcedToday = forcedToday + :one, windowEnds = :windowEnds, expiresAt = :expiresAt",
            )
            .condition_expression("#day = :today AND forcedToday < :perDay AND windowEnds <= :now")
            .expression_attribute_names("#day", "day")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":windowEnds", window_ends.clone())
            .expression_attribute_values(":expiresAt", expires_at.clone())
            .expression_attribute_values(":today", n(today))
            .expression_attribute_values(":perDay", n(per_day))
            .expression_attribute_values(":now", n(now));
        if update_if(next).await? {
            return Ok(true);
        }
        let first_today = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", pk)
            .item("day", n(today))
            .item("forcedToday", n(1))
            .item("windowEnds", window_ends)
            .item("expiresAt", expires_at)
            .condition_expression(
                "attribute_not_exists(pk) OR (#day <> :today AND windowEnds <= :now)",
            )
            .expression_attribute_names("#day", "day")
            .expression_attribute_values(":today", n(today))
            .expression_attribute_values(":now", n(now));
        put_if(first_today).await
    }
}
