//! Identities and the one rule that decides which account a login goes to.
//!
//! An identity is an (appid, openid) pair: WeChat gives a person one openid
//! per app. An account holds one or more identities and at most one unionid,
//! which WeChat gives the same person across the apps bound to one Open
//! Platform account. The rule (contract, "Several WeChat apps"): a login of
//! identity (A, o) that brought unionid U goes to
//!  1. the account that holds (A, o), adding U to it when it has none and no
//!     other account holds U;
//!  2. else the account that holds U, linking (A, o) to it;
//!  3. else a new account holding (A, o) and U.
//!
//! In case 1 another account may hold U already (the app was used before it
//! was bound): nothing is linked, both accounts log an `account_conflict`,
//! and an operator's merge resolves it. An account's unionid never changes.

use serde::Serialize;

use super::account::UserId;
use super::app::AppId;

/// One of an account's identities, and when it joined the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedIdentity {
    /// `None`: written before several apps, by the default app.
    pub appid: Option<AppId>,
    pub openid: String,
    /// Epoch seconds.
    pub linked_at: i64,
}

/// `GET /account`'s `apps`: one entry per identity, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppEntry {
    pub appid: AppId,
    pub openid: String,
    pub linked_at: i64,
}

/// What becomes of the account's unionid in case 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnionidChange {
    /// Nothing to write.
    Keep,
    /// The account had none and nobody holds the one this login brought: it
    /// is the account's from now on.
    Add,
    /// The account has it, but nothing says so under the unionid (an account
    /// written before several apps): it is claimed for the account, so that
    /// the other apps' logins find it.
    Claim,
}

/// Where a login goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountChoice {
    /// Case 1: the account holding the identity.
    Own {
        unionid: UnionidChange,
        /// Another account holds the unionid this login brought.
        conflict_with: Option<UserId>,
    },
    /// Case 2: the account holding the unionid; the identity joins it.
    Link { to: UserId },
    /// Case 3: a new account.
    Create,
}

/// The account holding the login's identity, as the login read it.
#[derive(Debug, Clone, Copy)]
pub struct IdentityHolder<'a> {
    pub user_id: &'a UserId,
    pub unionid: Option<&'a str>,
}

/// The rule above. `brought`: the unionid WeChat returned to this login;
/// `unionid_holder`: the account that holds it, if any.
pub fn choose_account(
    identity_holder: Option<IdentityHolder<'_>>,
    brought: Option<&str>,
    unionid_holder: Option<&UserId>,
) -> AccountChoice {
    let Some(own) = identity_holder else {
        return match unionid_holder {
            Some(holder) if brought.is_some() => AccountChoice::Link { to: holder.clone() },
            _ => AccountChoice::Create,
        };
    };
    let Some(brought) = brought else {
        return AccountChoice::Own {
            unionid: UnionidChange::Keep,
            conflict_with: None,
        };
    };
    let held_elsewhere = unionid_holder.filter(|holder| *holder != own.user_id);
    let unionid = match (own.unionid, held_elsewhere, unionid_holder) {
        (_, Some(_), _) => UnionidChange::Keep,
        (None, None, _) => UnionidChange::Add,
        (Some(kept), None, None) if kept == brought => UnionidChange::Claim,
        (Some(_), None, _) => UnionidChange::Keep,
    };
    AccountChoice::Own {
        unionid,
        conflict_with: held_elsewhere.cloned(),
    }
}

/// At most this many identities per account: one per app in practice, more
/// only by an operator's merges. Bounds what a deletion or a merge writes in
/// one transaction.
pub const MAX_IDENTITIES_PER_ACCOUNT: usize = 20;

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: u8) -> UserId {
        let letter = char::from(b'A' + n).to_string();
        UserId::parse(&format!("u_{}", letter.repeat(22))).unwrap()
    }

    fn held<'a>(user_id: &'a UserId, unionid: Option<&'a str>) -> Option<IdentityHolder<'a>> {
        Some(IdentityHolder { user_id, unionid })
    }

    #[test]
    fn case_1_the_identitys_own_account() {
        let (x, y) = (user(0), user(1));
        let keep = AccountChoice::Own {
            unionid: UnionidChange::Keep,
            conflict_with: None,
        };
        // No unionid brought: nothing else is looked at.
        assert_eq!(choose_account(held(&x, None), None, None), keep);
        assert_eq!(choose_account(held(&x, Some("U")), None, Some(&y)), keep);
        // The account's own unionid again.
        assert_eq!(
            choose_account(held(&x, Some("U")), Some("U"), Some(&x)),
            keep
        );
        // A unionid nobody holds goes to an account without one.
        assert_eq!(
            choose_account(held(&x, None), Some("U"), None),
            AccountChoice::Own {
                unionid: UnionidChange::Add,
                conflict_with: None
            }
        );
        // An account written before several apps holds U but nothing says so.
        assert_eq!(
            choose_account(held(&x, Some("U")), Some("U"), None),
            AccountChoice::Own {
                unionid: UnionidChange::Claim,
                conflict_with: None
            }
        );
        // A unionid never changes: another one, held by nobody, is ignored.
        assert_eq!(choose_account(held(&x, Some("U")), Some("V"), None), keep);
    }

    #[test]
    fn case_1_with_another_account_holding_the_unionid_is_a_conflict() {
        let (x, y) = (user(0), user(1));
        let conflict = AccountChoice::Own {
            unionid: UnionidChange::Keep,
            conflict_with: Some(y.clone()),
        };
        // The app was used before it was bound: x has no unionid, y holds U.
        assert_eq!(
            choose_account(held(&x, None), Some("U"), Some(&y)),
            conflict
        );
        // x holds another unionid, y holds the one brought.
        assert_eq!(
            choose_account(held(&x, Some("V")), Some("U"), Some(&y)),
            conflict
        );
    }

    #[test]
    fn case_2_links_case_3_creates() {
        let y = user(1);
        assert_eq!(
            choose_account(None, Some("U"), Some(&y)),
            AccountChoice::Link { to: y.clone() }
        );
        assert_eq!(choose_account(None, Some("U"), None), AccountChoice::Create);
        assert_eq!(choose_account(None, None, None), AccountChoice::Create);
    }
}
