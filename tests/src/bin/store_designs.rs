//! The single-session login's two designs on DynamoDB Local, side by side:
//! the product's login (consistent GetItem of the account + one
//! TransactWriteItems that also updates the account) and, written here only to be measured, chained writes
//! (conditional PutItem, PutItem returning the old owner item, DeleteItem of the
//! replaced session). For each: the latency of one login of a
//! user who already has a session (p50, p99 over N), and, as the correctness
//! bar, how many valid sessions 16 concurrent logins of one user leave.
//!
//! Run by `bash infra/bench.sh` (stand-ins started); `--quick` for CI.

// A benchmark is test code: a failed setup should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};
use wxauth::ports::sessions::LoginStore;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use tokio::task::JoinSet;
use wxauth::aws::DynamoSessionStore;
use wxauth::domain::redact::SessionKey;
use wxauth::domain::session::Session;
use wxauth::domain::time::epoch_seconds;
use wxauth::domain::token::{SessionToken, TokenKey};
use wxauth::ports::sessions::SessionStore;
use wxauth_tests::world::World;

#[derive(Clone, Copy, PartialEq)]
enum Design {
    Transaction,
    Chained,
}

impl Design {
    fn label(self) -> &'static str {
        match self {
            Self::Transaction => "GetItem + TransactWriteItems (today)",
            Self::Chained => "PutItem + PutItem(ALL_OLD) + DeleteItem",
        }
    }

    async fn login(self, world: &Chain, key: &TokenKey, session: &Session) {
        match self {
            Self::Transaction => {
                let login = wxauth::ports::sessions::LoginWrite {
                    key,
                    session,
                    default_app: true,
                    single_session: true,
                    log: None,
                    refresh: None,
                    new_account: wxauth::ports::sessions::NewAccount::Create { risk_rank: None },
                };
                world.store.login(&login).await.unwrap();
            }
            Self::Chained => world.create_chained(key, session).await,
        }
    }
}

/// The table through the product's store and, for the chained design, the
/// raw client. The chained design keeps an owner item of its own
/// (`openid#<openid>` naming the `current` session): what the product's login
/// kept before accounts, and all this comparison needs.
#[derive(Clone)]
struct Chain {
    store: DynamoSessionStore,
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl Chain {
    /// The new session, then the owner item pointed at it (a put returning the
    /// item it replaced), then the session it replaced deleted. Concurrent
    /// logins of one user form a chain in the owner item's order of writes,
    /// each deleting its predecessor, so the last one alone survives.
    async fn create_chained(&self, key: &TokenKey, session: &Session) {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(key.as_str().to_owned()))
            .item("userId", AttributeValue::S(session.user_id.to_string()))
            .item("openid", AttributeValue::S(session.openid.clone()))
            .item(
                "sessionKey",
                AttributeValue::S(
                    session
                        .session_key
                        .as_ref()
                        .map(|key| key.expose().to_owned())
                        .unwrap_or_default(),
                ),
            )
            .item(
                "createdAt",
                AttributeValue::N(session.created_at.to_string()),
            )
            .item(
                "expiresAt",
                AttributeValue::N(session.expires_at.to_string()),
            )
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .unwrap();
        let replaced = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(
                "pk",
                AttributeValue::S(format!("openid#{}", session.openid)),
            )
            .item("openid", AttributeValue::S(session.openid.clone()))
            .item("current", AttributeValue::S(key.as_str().to_owned()))
            .item(
                "expiresAt",
                AttributeValue::N(session.expires_at.to_string()),
            )
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .unwrap();
        let previous = replaced
            .attributes()
            .and_then(|item| item.get("current"))
            .and_then(|v| v.as_s().ok())
            .filter(|previous| *previous != key.as_str());
        if let Some(previous) = previous {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(previous.clone()))
                .send()
                .await
                .unwrap();
        }
    }
}

fn session(openid: &str) -> Session {
    let now = epoch_seconds();
    Session {
        user_id: wxauth::domain::account::UserId::generate().unwrap(),
        appid: wxauth::domain::app::AppId::parse(wxauth_tests::world::APPID),
        openid: openid.into(),
        unionid: None,
        session_key: Some(SessionKey::new("AAAAAAAAAAAAAAAAAAAAAA==")),
        session_key_expires_at: None,
        family: None,
        created_at: now,
        expires_at: now + 600,
    }
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p / 100.0).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let logins = if quick { 30 } else { 500 };
    let world = World::new().await;
    let chain = Chain {
        store: world.store().await,
        client: world.dynamodb.clone(),
        table: world.table.clone(),
    };
    let store = &chain.store;
    println!("| design | login p50 | login p99 | valid sessions after 16 concurrent logins |");
    println!("| --- | --- | --- | --- |");
    // Alternate the designs in rounds so both meet the same JVM state.
    let mut samples = [Vec::new(), Vec::new()];
    let designs = [Design::Transaction, Design::Chained];
    for round in 0..logins * 2 {
        let design = designs[round % 2];
        let openid = if design == Design::Transaction {
            "oBENCH-T"
        } else {
            "oBENCH-C"
        };
        let token = SessionToken::generate().unwrap();
        let started = Instant::now();
        design.login(&chain, &token.key(), &session(openid)).await;
        // The first login of each user has nothing to replace: not counted.
        if round >= 2 {
            samples[round % 2].push(started.elapsed());
        }
    }
    for (i, design) in designs.into_iter().enumerate() {
        let openid = format!("oRACE-{i}");
        let mut tasks = JoinSet::new();
        let mut tokens = Vec::new();
        for _ in 0..16 {
            let token = SessionToken::generate().unwrap();
            tokens.push(token.clone());
            let (chain, session) = (chain.clone(), session(&openid));
            tasks.spawn(async move { design.login(&chain, &token.key(), &session).await });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        let mut valid = 0;
        for token in &tokens {
            if store.get(&token.key()).await.unwrap().is_some() {
                valid += 1;
            }
        }
        let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
        println!(
            "| {} | {} | {} | {valid} |",
            design.label(),
            ms(percentile(&mut samples[i], 50.0)),
            ms(percentile(&mut samples[i], 99.0)),
        );
        assert_eq!(valid, 1, "{}: {valid} valid sessions", design.label());
    }
}
