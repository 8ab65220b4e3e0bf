//! Reading identities and accounts: several keys in one consistent request,
//! an identity under whichever key holds it, an account's home by its
//! userId, and a whole account (its home and every linked identity) for the
//! changes that touch them all (deletion, disabling, a merge).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

use super::DynamoSessionStore;
use super::items::{Fields, IdentityItem, build_error, identity_from_item, legacy_pk, user_pk};
use super::table::unavailable;
use crate::domain::account::UserId;
use crate::ports::errors::StoreError;

pub(super) type Item = HashMap<String, AttributeValue>;

/// BatchGetItem returns what it could not read as `UnprocessedKeys` (under
/// throttling); they are asked again this many times.
const BATCH_ROUNDS: u32 = 5;

/// An account and all its identity items.
#[derive(Debug, Clone)]
pub(super) struct WholeAccount {
    pub(super) home: IdentityItem,
    /// The identities linked to it, as their items say (an item that went
    /// missing or names another account is left out).
    pub(super) linked: Vec<IdentityItem>,
}

impl WholeAccount {
    pub(super) fn items(&self) -> impl Iterator<Item = &IdentityItem> {
        std::iter::once(&self.home).chain(self.linked.iter())
    }
}

impl DynamoSessionStore {
    /// The items under `keys` (at most 100), read consistently in one
    /// request where DynamoDB allows, by key; missing ones are absent.
    pub(super) async fn batch_get(
        &self,
        keys: &[String],
    ) -> Result<HashMap<String, Item>, StoreError> {
        let mut found = HashMap::new();
        let mut pending: Vec<Item> = keys
            .iter()
            .map(|key| HashMap::from([("pk".to_owned(), AttributeValue::S(key.clone()))]))
            .collect();
        for _ in 0..BATCH_ROUNDS {
            if pending.is_empty() {
                return Ok(found);
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .map_err(build_error)?;
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|err| unavailable(&err))?;
            for item in output
                .responses()
                .and_then(|tables| tables.get(&self.table))
                .into_iter()
                .flatten()
            {
                if let Ok(pk) = Fields(item).text("pk") {
                    found.insert(pk, item.clone());
                }
            }
            if let Some(unprocessed) = output
                .unprocessed_keys()
                .and_then(|tables| tables.get(&self.table))
            {
                pending = unprocessed.keys().to_vec();
            }
        }
        if pending.is_empty() {
            Ok(found)
        } else {
            Err(StoreError::Unavailable(
                "the table kept some keys of a batch read unprocessed".into(),
            ))
        }
    }

    /// The first of `keys` that holds an identity.
    pub(super) fn first_identity(
        keys: &[String],
        found: &HashMap<String, Item>,
    ) -> Result<Option<IdentityItem>, StoreError> {
        keys.iter()
            .find_map(|key| found.get(key))
            .map(identity_from_item)
            .transpose()
    }

    /// The identity item under the first of `keys` that holds one.
    pub(super) async fn read_identity(
        &self,
        keys: &[String],
    ) -> Result<Option<IdentityItem>, StoreError> {
        let found = match keys {
            [only] => self
                .consistent_get(only, None)
                .await?
                .map(|item| HashMap::from([(only.clone(), item)]))
                .unwrap_or_default(),
            _ => self.batch_get(keys).await?,
        };
        Self::first_identity(keys, &found)
    }

    /// The home under `pk`, if it is `user_id`'s account's.
    pub(super) async fn read_home(
        &self,
        pk: &str,
        user_id: &UserId,
    ) -> Result<Option<IdentityItem>, StoreError> {
        let item = self.consistent_get(pk, None).await?;
        Ok(item
            .as_ref()
            .map(identity_from_item)
            .transpose()?
            .filter(|home| home.is_home() && &home.user_id == user_id))
    }

    /// Where `user_id`'s account lives: its index names its home (an account
    /// written before several apps: by its openid).
    pub(super) async fn home_key_of(&self, user_id: &UserId) -> Result<Option<String>, StoreError> {
        let Some(index) = self.consistent_get(&user_pk(user_id), None).await? else {
            return Ok(None);
        };
        let fields = Fields(&index);
        Ok(fields
            .text("home")
            .ok()
            .or_else(|| fields.text("openid").ok().map(|openid| legacy_pk(&openid))))
    }

    /// `user_id`'s account's home.
    pub(super) async fn read_home_of(
        &self,
        user_id: &UserId,
    ) -> Result<Option<IdentityItem>, StoreError> {
        match self.home_key_of(user_id).await? {
            Some(pk) => self.read_home(&pk, user_id).await,
            None => Ok(None),
        }
    }

    /// `user_id`'s account: its home and its linked identities.
    pub(super) async fn read_whole_account(
        &self,
        user_id: &UserId,
    ) -> Result<Option<WholeAccount>, StoreError> {
        let Some(home) = self.read_home_of(user_id).await? else {
            return Ok(None);
        };
        self.whole_account_from(home).await.map(Some)
    }

    /// The linked identities of `home`'s account, read with one request.
    pub(super) async fn whole_account_from(
        &self,
        home: IdentityItem,
    ) -> Result<WholeAccount, StoreError> {
        let keys: Vec<String> = home
            .account
            .iter()
            .flat_map(|data| data.linked.iter().map(|(pk, _)| pk.clone()))
            .collect();
        let found = if keys.is_empty() {
            HashMap::new()
        } else {
            self.batch_get(&keys).await?
        };
        let mut linked = Vec::new();
        for key in &keys {
            if let Some(item) = found.get(key) {
                let identity = identity_from_item(item)?;
                if identity.user_id == home.user_id && identity.home.as_deref() == Some(&home.pk) {
                    linked.push(identity);
                }
            }
        }
        Ok(WholeAccount { home, linked })
    }
}
