//! Authorizer events: arbitrary text as the payload, and the three event kinds
//! (HTTP API payload 2.0, REST TOKEN, REST REQUEST) with a fuzzed Authorization
//! value, method ARN and field types. Nothing may allow unless the token is the
//! one live session's, and nothing may panic.
#![no_main]

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use wxauth::handlers::authorizer::Authorizer;
use wxauth::runtime::deadline::Deadline;
use wxauth::ports::memory::MemorySessionStore;
use wxauth_fuzz::{runtime, store_with_live_session};

struct World {
    runtime: tokio::runtime::Runtime,
    authorizer: Authorizer<Arc<MemorySessionStore>>,
    token: String,
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let (store, token) = store_with_live_session();
    World { runtime: runtime(), authorizer: Authorizer::new(store), token }
});

fn allowed(event: Value) -> bool {
    let world = &*WORLD;
    let deadline = Deadline::after(Duration::from_secs(5));
    let answer = world.runtime.block_on(world.authorizer.decide_answer(event, deadline)).expect("the memory store answers");
    answer.is_allowed()
}

fuzz_target!(|data: &[u8]| {
    let world = &*WORLD;
    // Arbitrary JSON cannot hold the live token (random per run): never allowed.
    if let Ok(event) = serde_json::from_slice::<Value>(data) {
        assert!(!allowed(event.clone()), "allowed {event}");
    }
    let Some((&kind, rest)) = data.split_first() else { return };
    let mut fields = rest.split(|b| *b == 0xFF).map(|f| String::from_utf8_lossy(f).into_owned());
    let mut next = || fields.next().unwrap_or_default();
    let (authorization, method_arn) = (next(), next());
    // Half the time, the live token in a fuzzed frame.
    let authorization = if kind & 0x80 != 0 { format!("{authorization}{}", world.token) } else { authorization };
    let event = match kind % 3 {
        0 => json!({
            "version": "2.0", "type": "REQUEST", "routeArn": method_arn,
            "identitySource": [authorization], "headers": {"authorization": authorization},
            "requestContext": {"http": {"method": "GET", "path": "/"}},
        }),
        1 => json!({"type": "TOKEN", "authorizationToken": authorization, "methodArn": method_arn}),
        _ => json!({
            "type": "REQUEST", "methodArn": method_arn, "headers": {"Authorization": authorization},
            "requestContext": {"stage": "prod"},
        }),
    };
    let allowed = allowed(event);
    // Only the exact Bearer form of the live token may pass.
    let trimmed = authorization.trim();
    let exact = trimmed
        .split_once(' ')
        .is_some_and(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer") && token.trim() == world.token);
    assert!(!allowed || exact, "allowed {authorization:?}");
});
