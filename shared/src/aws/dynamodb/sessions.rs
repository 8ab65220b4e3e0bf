//! Sessions: read (whole, or the authorizer's projection), deleted, and the
//! connection opened at init.

use aws_sdk_dynamodb::types::AttributeValue;

use super::DynamoSessionStore;
use super::items::{CALLER_ATTRIBUTES, caller_from_item, session_from_item};
use super::table::put_if;
use crate::domain::session::{Caller, Session};
use crate::domain::token::TokenKey;
use crate::ports::errors::{Access, StoreError};
use crate::ports::sessions::SessionStore;

/// A key no session can have (sessions are 64 hex digits): login's warm-up put,
/// whose condition can never hold.
const WARM_UP_KEY: &str = "wxauth#warm-up";

/// A session key nobody holds (the SHA-256 of a 256-bit random token is never
/// all zeros): the readers' warm-up GetItem, shaped as the authorizer's reads
/// are, so that its narrowed IAM policy allows it too.
const WARM_UP_SESSION_KEY: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

impl SessionStore for DynamoSessionStore {
    /// One cheap call within the function's permissions: a projected GetItem of
    /// a session key that never exists, or, for login, a put whose condition can
    /// never hold, so nothing is written.
    async fn warm_up(&self, access: Access) {
        let outcome = match access {
            Access::Read => self.read_caller(WARM_UP_SESSION_KEY).await.map(|_| ()),
            Access::Write => put_if(
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .item("pk", AttributeValue::S(WARM_UP_KEY.to_owned()))
                    .condition_expression("attribute_exists(pk) AND attribute_not_exists(pk)"),
            )
            .await
            .map(|_| ()),
        };
        if let Err(error) = outcome {
            tracing::warn!(%error, "session table warm-up failed; the first request will connect");
        }
    }

    async fn delete(&self, key: &TokenKey) -> Result<(), StoreError> {
        self.delete_plain(key).await
    }

    async fn get(&self, key: &TokenKey) -> Result<Option<Session>, StoreError> {
        let item = self.consistent_get(key.as_str(), None).await?;
        item.as_ref().map(session_from_item).transpose()
    }

    /// GetItem with a projection of exactly `CALLER_ATTRIBUTES`: the authorizer's
    /// role may read no other attribute (`dynamodb:Attributes` in template.yaml),
    /// so neither the session_key nor the WeChat access token ever reaches it.
    async fn caller(&self, key: &TokenKey) -> Result<Option<Caller>, StoreError> {
        self.read_caller(key.as_str()).await
    }
}

impl DynamoSessionStore {
    pub(super) async fn read_caller(&self, pk: &str) -> Result<Option<Caller>, StoreError> {
        let projection = CALLER_ATTRIBUTES.join(", ");
        let item = self.consistent_get(pk, Some(&projection)).await?;
        item.as_ref().map(caller_from_item).transpose()
    }
}
