//! The published key set in memory.

use super::MemorySessionStore;
use crate::domain::jwt::{KeyVersion, PublishedKey, merge_published};
use crate::ports::errors::StoreError;
use crate::ports::keys::PublicKeyStore;

impl PublicKeyStore for MemorySessionStore {
    async fn published_keys(&self) -> Result<Vec<PublishedKey>, StoreError> {
        Ok(self.lock().published.clone())
    }

    async fn publish(
        &self,
        keys: &[KeyVersion],
        now: i64,
    ) -> Result<Vec<PublishedKey>, StoreError> {
        let mut state = self.lock();
        let merged = merge_published(std::mem::take(&mut state.published), keys, now);
        state.published = merged;
        Ok(state.published.clone())
    }

    async fn unpublish_all_but(&self, kids: &[&str]) -> Result<(), StoreError> {
        self.lock()
            .published
            .retain(|p| kids.contains(&p.key.kid.as_str()));
        Ok(())
    }
}
