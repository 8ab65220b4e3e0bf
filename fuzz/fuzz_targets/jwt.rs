//! JWT checking: arbitrary text as a bearer JWT, and a genuine JWT with one of
//! its parts replaced by arbitrary bytes, through the checker every route and
//! the authorizer use. Nothing but the genuine token may pass; nothing panics.
#![no_main]

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use wxauth::services::access::TokenCheck;
use wxauth::domain::jwt::{Claims, JwtSettings, SigningKey, generate_key, sign};
use wxauth::ports::keys::PublicKeyStore;
use wxauth::ports::memory::MemorySessionStore;
use wxauth::domain::token::Bearer;
use wxauth_fuzz::runtime;

struct World {
    runtime: tokio::runtime::Runtime,
    store: MemorySessionStore,
    check: TokenCheck,
    genuine: String,
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let runtime = runtime();
    let key = SigningKey::from_secret(&generate_key("fuzz").expect("key")).expect("key");
    let store = MemorySessionStore::new();
    runtime
        .block_on(store.publish(&[key.key_version()], 0))
        .expect("publish");
    let settings = JwtSettings { issuer: "https://fuzz.test".into(), audience: "wxauth".into() };
    let claims = Claims {
        iss: settings.issuer.clone(),
        aud: settings.audience.clone(),
        sub: "u_AAAAAAAAAAAAAAAAAAAAAA".into(),
        openid: "oFUZZ".into(),
        unionid: None,
        appid: "wx".into(),
        sid: "A".repeat(43),
        iat: 0,
        exp: i64::MAX / 2,
    };
    let genuine = sign(&key, &claims).expect("sign");
    World { runtime, store, check: TokenCheck::new(Some(settings)), genuine }
});

fuzz_target!(|data: &[u8]| {
    let world = &*WORLD;
    let text = String::from_utf8_lossy(data);
    let mut candidates = vec![text.to_string()];
    // The genuine token with one part replaced by the input (base64url of it).
    let parts: Vec<&str> = world.genuine.split('.').collect();
    let replaced = URL_SAFE_NO_PAD.encode(data);
    for i in 0..3 {
        let mut changed = parts.clone();
        changed[i] = &replaced;
        candidates.push(changed.join("."));
    }
    for candidate in candidates {
        let Ok(bearer) = Bearer::from_header(Some(&format!("Bearer {candidate}"))) else {
            continue;
        };
        let outcome = world.runtime.block_on(world.check.session_ref(&world.store, &bearer));
        if let (Ok(_), Bearer::Jwt(jwt)) = (&outcome, &bearer) {
            assert_eq!(jwt, &world.genuine, "a forged JWT passed");
        }
    }
});
