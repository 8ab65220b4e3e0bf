//! Accounts in memory.

use super::MemorySessionStore;
use crate::domain::account::{Account, AccountStatus, BoundPhone, UserId};
use crate::domain::identity::MAX_IDENTITIES_PER_ACCOUNT;
use crate::domain::login_log::{LogEntry, LogEvent};
use crate::ports::accounts::{AccountStore, ClaimReport, IdentityQuery, MergeOutcome};
use crate::ports::errors::StoreError;

impl AccountStore for MemorySessionStore {
    async fn account(&self, user_id: &UserId) -> Result<Option<Account>, StoreError> {
        Ok(self.lock().accounts.get(user_id).cloned())
    }

    async fn account_by_identity(
        &self,
        identity: IdentityQuery<'_>,
    ) -> Result<Option<Account>, StoreError> {
        let state = self.lock();
        // Nothing here was written before several apps: every identity has its app.
        let Some(appid) = identity.appid else {
            return Ok(None);
        };
        Ok(state
            .identities
            .get(&(appid.clone(), identity.openid.to_owned()))
            .and_then(|user_id| state.accounts.get(user_id))
            .cloned())
    }

    async fn account_by_unionid(&self, unionid: &str) -> Result<Option<Account>, StoreError> {
        let state = self.lock();
        Ok(state
            .unionids
            .get(unionid)
            .and_then(|user_id| state.accounts.get(user_id))
            .cloned())
    }

    async fn bind_phone(&self, user_id: &UserId, phone: &BoundPhone) -> Result<bool, StoreError> {
        let mut state = self.lock();
        Ok(match state.accounts.get_mut(user_id) {
            Some(account) => {
                account.phone = Some(phone.clone());
                true
            }
            None => false,
        })
    }

    async fn delete_account(
        &self,
        user_id: &UserId,
        log: Option<&LogEntry>,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        if state.remove_account(user_id).is_none() {
            return Ok(false);
        }
        state.log.extend(log.cloned());
        Ok(true)
    }

    async fn set_status(
        &self,
        user_id: &UserId,
        status: AccountStatus,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let Some(account) = state.accounts.get_mut(user_id) else {
            return Ok(false);
        };
        account.status = status;
        if status == AccountStatus::Disabled {
            state.revoke_sessions_of(user_id);
        }
        Ok(true)
    }

    async fn merge(
        &self,
        keep: &UserId,
        from: &UserId,
        log: Option<&LogEntry>,
    ) -> Result<MergeOutcome, StoreError> {
        let mut state = self.lock();
        if keep == from {
            return Ok(MergeOutcome::Same);
        }
        let (Some(kept), Some(merged)) = (state.accounts.get(keep), state.accounts.get(from))
        else {
            let unknown = if state.accounts.contains_key(keep) {
                from
            } else {
                keep
            };
            return Ok(MergeOutcome::Unknown(unknown.clone()));
        };
        if let (Some(a), Some(b)) = (&kept.unionid, &merged.unionid) {
            if a != b {
                return Ok(MergeOutcome::DifferentUnionids);
            }
        }
        if kept.identities.len() + merged.identities.len() > MAX_IDENTITIES_PER_ACCOUNT {
            return Ok(MergeOutcome::TooManyIdentities);
        }
        let now = crate::domain::time::epoch_seconds();
        let Some(merged) = state.remove_account(from) else {
            return Ok(MergeOutcome::Unknown(from.clone()));
        };
        let Some(kept) = state.accounts.get_mut(keep) else {
            return Ok(MergeOutcome::Unknown(keep.clone()));
        };
        let mut moved = Vec::new();
        for identity in merged.identities {
            moved.push(identity.clone());
            kept.identities
                .push(crate::domain::identity::LinkedIdentity {
                    linked_at: now,
                    ..identity
                });
        }
        if kept.unionid.is_none() {
            kept.unionid.clone_from(&merged.unionid);
        }
        if kept.phone.is_none() {
            kept.phone = merged.phone;
        }
        let survivor = kept.clone();
        for identity in moved {
            if let Some(appid) = identity.appid {
                state
                    .identities
                    .insert((appid, identity.openid), keep.clone());
            }
        }
        if let Some(unionid) = &survivor.unionid {
            state.unionids.insert(unionid.clone(), keep.clone());
        }
        if let Some(entry) = log {
            for (user, other) in [(keep, from), (from, keep)] {
                let merged_entry = entry
                    .about_other(LogEvent::AccountMerged, user, other)
                    .map_err(|err| StoreError::Unavailable(err.to_string()))?;
                state.log.push(merged_entry);
            }
        }
        Ok(MergeOutcome::Merged(Box::new(survivor)))
    }

    /// Nothing in memory was written before several apps: every account
    /// that has a unionid holds it already.
    async fn claim_legacy_unionids(&self) -> Result<ClaimReport, StoreError> {
        let state = self.lock();
        Ok(ClaimReport {
            already: state.unionids.len(),
            ..ClaimReport::default()
        })
    }
}
