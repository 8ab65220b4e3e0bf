//! Cold-start harness: each release binary, and a reference Python
//! implementation (boto3 under awslambdaric), run as Lambda runs them against a
//! Lambda Runtime API emulator, DynamoDB Local, moto and the fake WeChat.
//!
//! Per function: N cold starts (init = process start → first
//! `GET /runtime/invocation/next`; first-invocation latency), then M warm
//! invocations in the last process (p50/p99), its peak RSS (`VmHWM`) and the
//! stripped binary size. Prints a Markdown table and the Python/Rust ratios.
//!
//! Run with `bash infra/bench.sh` (starts the stand-ins); `--quick` for CI.
//! Options: `--runs N` cold starts, `--warm N` warm invocations, `--rust-only`,
//! `--only BINARY` (one function, e.g. `--only authorizer`), `--label TEXT` (only
//! the rows whose label holds TEXT, e.g. `--label "login (Rust"`), `--env NAME=VALUE`
//! (repeatable: more environment for every function, e.g. `REFRESH_TTL_SECONDS=0`
//! to compare with binaries from before refresh tokens, via `WXAUTH_BIN_DIR`).

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use wxauth_tests::events::{HttpEvent, authorizer_event};
use wxauth_tests::invoke::login_event;
use wxauth_tests::runtime::{LambdaFunction, Outcome, bin_dir};
use wxauth_tests::tls::TestCa;
use wxauth_tests::world::{APPID, World, encrypt_for, phone_plaintext};

/// The subjects measured over TLS as well: one row per function and mode
/// that does TLS at init, and the Python reference.
const OVER_TLS: [&str; 7] = [
    "login (Rust, single session)",
    "login (Rust, JWT, single session)",
    "decrypt-phone (Rust)",
    "check-session (Rust)",
    "authorizer (Rust)",
    "login (Python ref)",
    "check-session (Python ref)",
];

/// `tls-floor`'s runs, process start to exit: what an init cannot go below.
fn floor(args: &[&str], runs: usize) -> Vec<Duration> {
    let binary = bin_dir().join("tls-floor");
    (0..runs)
        .map(|_| {
            let started = Instant::now();
            let status = std::process::Command::new(&binary)
                .args(args)
                .status()
                .unwrap_or_else(|err| {
                    panic!(
                        "{}: {err} (cargo build --release -p tls-floor)",
                        binary.display()
                    )
                });
            assert!(status.success(), "tls-floor {args:?} failed");
            started.elapsed()
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Route {
    /// A first login: a new user every time (creates the account).
    Login,
    /// A returning user's login: the same user every time (most logins).
    ReturningLogin,
    Phone,
    Session,
    Authorizer,
    /// POST /refresh with the refresh token the previous answer rotated to.
    Refresh,
}

struct Subject {
    label: &'static str,
    name: &'static str,
    route: Route,
    python: bool,
    /// Extra environment, e.g. `SINGLE_SESSION=false` to compare like with like.
    env: &'static [(&'static str, &'static str)],
    /// JWT mode: a signing key in moto, `ISSUER` for every function.
    jwt: bool,
    /// Three apps configured (two mini-programs and an `oauth` app, one
    /// appsecret each): `World::several_apps`.
    apps: bool,
}

const ISSUER: &str = "https://auth.wxauth.test";

/// The tokens the measured requests carry.
struct Tokens {
    token: String,
    refresh: String,
}

struct Row {
    label: String,
    init: Vec<Duration>,
    first: Vec<Duration>,
    warm: Vec<Duration>,
    rss_kib: Option<u64>,
    size: Option<u64>,
}

fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// The one user of the returning-login rows.
const RETURNING_OPENID: &str = "oRETURNING0000000000000001";

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

async fn event_for(
    world: &World,
    route: Route,
    tokens: &Tokens,
    issued: &wechat_sim::Issued,
) -> Value {
    let token = tokens.token.as_str();
    match route {
        Route::Login => {
            let (code, _) = world.wechat.issue_code();
            login_event(&code).build()
        }
        Route::ReturningLogin => {
            let (code, _) = world.wechat.issue_code_for(RETURNING_OPENID, None);
            login_event(&code).build()
        }
        Route::Session => HttpEvent::new("GET", "/session").bearer(token).build(),
        Route::Phone => HttpEvent::new("POST", "/phone")
            .bearer(token)
            .json(&encrypt_for(issued, &phone_plaintext(APPID, "13800138000")))
            .build(),
        // What an HTTP API sends its authorizer for a protected route.
        Route::Authorizer => authorizer_event(Some(&format!("Bearer {token}"))),
        Route::Refresh => HttpEvent::new("POST", "/refresh")
            .json(&serde_json::json!({"refreshToken": tokens.refresh}))
            .build(),
    }
}

/// One invocation that must succeed: a 200, or for the authorizer an allow.
/// A refresh's rotated token is kept for the next.
async fn succeed(
    function: &mut LambdaFunction,
    route: Route,
    event: Value,
    label: &str,
    tokens: &mut Tokens,
) {
    if route == Route::Authorizer {
        match function.invoke(event).await {
            Outcome::Response(answer) => {
                assert_eq!(answer["isAuthorized"], true, "{label}: {answer}")
            }
            Outcome::Error(error) => panic!("{label}: {error}"),
        }
    } else {
        let (status, _, body) = function.call(event).await;
        assert_eq!(status, 200, "{label}: {body}");
        if route == Route::Refresh {
            tokens.refresh = body["refreshToken"]
                .as_str()
                .expect("refreshToken")
                .to_owned();
        }
    }
}

async fn start(subject: &Subject, env: &[(&str, String)]) -> LambdaFunction {
    if subject.python {
        let python = std::env::var("WXAUTH_PYTHON").unwrap_or_else(|_| "python3".into());
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../infra/bench/python_ref");
        let mut env = env.to_vec();
        env.push(("PYTHONPATH", dir.display().to_string()));
        // boto3 reads AWS_CA_BUNDLE itself; urllib (WeChat) reads this.
        if let Some((_, bundle)) = env
            .iter()
            .find(|(name, _)| *name == "AWS_CA_BUNDLE")
            .cloned()
        {
            env.push(("SSL_CERT_FILE", bundle));
        }
        let handler = if subject.route == Route::Login {
            "handlers.login"
        } else {
            "handlers.check_session"
        };
        LambdaFunction::start_command(
            subject.name,
            OsStr::new(&python),
            &["-m", "awslambdaric", handler],
            &env,
        )
        .await
    } else {
        LambdaFunction::start(subject.name, env).await
    }
}

async fn measure(
    subject: &Subject,
    extra: &[(&'static str, String)],
    runs: usize,
    warm: usize,
    tls: Option<&TestCa>,
) -> Row {
    let world = match subject.apps {
        true => World::several_apps().await,
        false => World::new().await,
    };
    let mut env = match tls {
        Some(ca) => world.function_env_over_tls(ca).await,
        None => world.function_env(),
    };
    env.extend(subject.env.iter().map(|(k, v)| (*k, (*v).to_owned())));
    env.extend(extra.iter().cloned());
    let mut login_env = env.clone();
    if subject.jwt {
        let key = wxauth::domain::jwt::generate_key("bench").expect("an RSA key");
        let arn = world
            .standins
            .create_secret(&serde_json::to_string(&key).expect("JSON"))
            .await;
        env.push(("ISSUER", ISSUER.to_owned()));
        login_env = env.clone();
        // Only login reads the key; the checkers read the published halves.
        login_env.push(("SIGNING_KEY_SECRET_ID", arn));
        if subject.name == "login" {
            env = login_env.clone();
        }
    }
    // A session and its refresh token for the routes that need them, made by
    // the product's login binary in the subject's mode.
    let (code, issued) = world.wechat.issue_code();
    let mut tokens = {
        let mut login = LambdaFunction::start("login", &login_env).await;
        let (status, _, body) = login.call(login_event(&code).build()).await;
        assert_eq!(status, 200, "{body}");
        login.stop().await;
        Tokens {
            token: body["token"].as_str().expect("token").to_owned(),
            // Absent when refresh tokens are off (or in binaries from before them).
            refresh: body["refreshToken"].as_str().unwrap_or_default().to_owned(),
        }
    };

    let mut row = Row {
        label: match tls {
            Some(_) => format!("{} over TLS", subject.label),
            None => subject.label.to_owned(),
        },
        init: vec![],
        first: vec![],
        warm: vec![],
        rss_kib: None,
        size: None,
    };
    for run in 0..runs {
        let mut function = start(subject, &env).await;
        let init = function
            .init_duration(Duration::from_secs(30))
            .await
            .expect("function never polled for work");
        let event = event_for(&world, subject.route, &tokens, &issued).await;
        let started = Instant::now();
        succeed(
            &mut function,
            subject.route,
            event,
            subject.label,
            &mut tokens,
        )
        .await;
        row.first.push(started.elapsed());
        row.init.push(init);
        if run + 1 == runs {
            for _ in 0..warm {
                let event = event_for(&world, subject.route, &tokens, &issued).await;
                let started = Instant::now();
                succeed(
                    &mut function,
                    subject.route,
                    event,
                    subject.label,
                    &mut tokens,
                )
                .await;
                row.warm.push(started.elapsed());
            }
            row.rss_kib = function.peak_rss_kib();
        }
    }
    if !subject.python {
        row.size = std::fs::metadata(bin_dir().join(subject.name))
            .ok()
            .map(|m| m.len());
    }
    row
}

/// A fresh DynamoDB Local (a JVM) and moto answer their first few hundred calls
/// slowly; without this, whichever function is measured first pays for it.
async fn warm_up_standins(calls: usize) {
    let world = World::new().await;
    let login = world.login().await;
    let check = world.check().await;
    let secrets = world.standins.secrets_client().await;
    for _ in 0..calls {
        let (code, _) = world.wechat.issue_code();
        let answer =
            wxauth_tests::invoke::call(&login, wxauth_tests::invoke::login_event(&code)).await;
        let token = answer.body["token"].as_str().expect("token").to_owned();
        let event = HttpEvent::new("GET", "/session").bearer(&token);
        wxauth_tests::invoke::call(&check, event).await;
        let _ = secrets
            .get_secret_value()
            .secret_id(&world.secret_arn)
            .send()
            .await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().position(|a| a == name);
    let number = |name: &str| flag(name).and_then(|i| args.get(i + 1)?.parse::<usize>().ok());
    let quick = flag("--quick").is_some();
    let (mut runs, mut warm) = if quick { (2, 20) } else { (10, 1000) };
    runs = number("--runs").unwrap_or(runs);
    warm = number("--warm").unwrap_or(warm);
    let rust_only = flag("--rust-only").is_some();
    let only = flag("--only").and_then(|i| args.get(i + 1)).cloned();
    let label = flag("--label").and_then(|i| args.get(i + 1)).cloned();
    let extra: Vec<(&'static str, String)> = args
        .windows(2)
        .filter(|pair| pair[0] == "--env")
        .map(|pair| match pair[1].split_once('=') {
            // Leaked once per run: the environment lists are `&'static str`-keyed.
            Some((name, value)) => (&*name.to_owned().leak(), value.to_owned()),
            None => panic!("--env takes NAME=VALUE, not {}", pair[1]),
        })
        .collect();
    let subjects = [
        Subject {
            label: "login (Rust)",
            name: "login",
            route: Route::Login,
            python: false,
            // The Python reference keeps every session; compare like with like.
            env: &[("SINGLE_SESSION", "false")],
            jwt: false,
            apps: false,
        },
        Subject {
            label: "login (Rust, single session)",
            name: "login",
            route: Route::Login,
            python: false,
            env: &[],
            jwt: false,
            apps: false,
        },
        Subject {
            label: "login (Rust, returning user)",
            name: "login",
            route: Route::ReturningLogin,
            python: false,
            env: &[("SINGLE_SESSION", "false")],
            jwt: false,
            apps: false,
        },
        Subject {
            label: "login (Rust, returning user, single session)",
            name: "login",
            route: Route::ReturningLogin,
            python: false,
            env: &[],
            jwt: false,
            apps: false,
        },
        Subject {
            label: "decrypt-phone (Rust)",
            name: "decrypt-phone",
            route: Route::Phone,
            python: false,
            env: &[],
            jwt: false,
            apps: false,
        },
        Subject {
            label: "check-session (Rust)",
            name: "check-session",
            route: Route::Session,
            python: false,
            env: &[],
            jwt: false,
            apps: false,
        },
        Subject {
            label: "authorizer (Rust)",
            name: "authorizer",
            route: Route::Authorizer,
            python: false,
            env: &[],
            jwt: false,
            apps: false,
        },
        Subject {
            label: "login (Rust, JWT, single session)",
            name: "login",
            route: Route::Login,
            python: false,
            env: &[],
            jwt: true,
            apps: false,
        },
        Subject {
            label: "refresh (Rust, single session)",
            name: "login",
            route: Route::Refresh,
            python: false,
            env: &[],
            jwt: false,
            apps: false,
        },
        Subject {
            label: "refresh (Rust, JWT)",
            name: "login",
            route: Route::Refresh,
            python: false,
            env: &[],
            jwt: true,
            apps: false,
        },
        Subject {
            label: "check-session (Rust, JWT)",
            name: "check-session",
            route: Route::Session,
            python: false,
            env: &[],
            jwt: true,
            apps: false,
        },
        Subject {
            label: "authorizer (Rust, JWT)",
            name: "authorizer",
            route: Route::Authorizer,
            python: false,
            env: &[],
            jwt: true,
            apps: false,
        },
        Subject {
            label: "login (Rust, single session, three apps)",
            name: "login",
            route: Route::Login,
            python: false,
            env: &[],
            jwt: false,
            apps: true,
        },
        Subject {
            label: "decrypt-phone (Rust, three apps)",
            name: "decrypt-phone",
            route: Route::Phone,
            python: false,
            env: &[],
            jwt: false,
            apps: true,
        },
        Subject {
            label: "check-session (Rust, three apps)",
            name: "check-session",
            route: Route::Session,
            python: false,
            env: &[],
            jwt: false,
            apps: true,
        },
        Subject {
            label: "login (Python ref)",
            name: "login-python",
            route: Route::Login,
            python: true,
            env: &[],
            jwt: false,
            apps: false,
        },
        Subject {
            label: "check-session (Python ref)",
            name: "check-session-python",
            route: Route::Session,
            python: true,
            env: &[],
            jwt: false,
            apps: false,
        },
    ];
    eprintln!("cold-start harness: {runs} cold starts per function, {warm} warm invocations");
    warm_up_standins(if quick { 20 } else { 300 }).await;
    let mut rows = Vec::new();
    let chosen = |s: &&Subject| {
        !(rust_only && s.python)
            && only.as_deref().is_none_or(|name| s.name == name)
            && label.as_deref().is_none_or(|text| s.label.contains(text))
    };
    let ca = TestCa::new();
    for subject in subjects.iter().filter(chosen) {
        eprintln!("measuring {}", subject.label);
        rows.push(measure(subject, &extra, runs, warm, None).await);
        if OVER_TLS.contains(&subject.label) {
            eprintln!("measuring {} over TLS", subject.label);
            rows.push(measure(subject, &extra, runs, warm, Some(&ca)).await);
        }
    }
    // The floor: a process that only seeds AWS-LC's generator, and one that
    // only makes one TLS handshake (to DynamoDB Local behind this run's CA).
    let floor_runs = (runs * 5).max(10);
    let target = ca
        .front(&wxauth_tests::standins::StandIns::from_env().dynamodb)
        .await
        .trim_start_matches("https://")
        .to_owned();
    let bundle = ca.bundle.display().to_string();
    let entropy = floor(&["entropy"], floor_runs);
    let handshake = floor(&["handshake", &target, &bundle], floor_runs);
    println!(
        "| function | init p50 | init max | first invocation p50 | warm p50 | warm p99 | peak RSS | binary |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for row in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            row.label,
            ms(percentile(&row.init, 50.0)),
            ms(percentile(&row.init, 100.0)),
            ms(percentile(&row.first, 50.0)),
            ms(percentile(&row.warm, 50.0)),
            ms(percentile(&row.warm, 99.0)),
            row.rss_kib
                .map_or("?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0)),
            row.size
                .map_or("-".into(), |b| format!("{:.2} MB", b as f64 / 1e6)),
        );
    }
    let find = |label: &str| rows.iter().find(|r| r.label == label);
    let p50 = |samples: &[Duration]| percentile(samples, 50.0);
    println!();
    println!(
        "floor: AWS-LC's seeding alone {} p50, seeding + one TLS handshake {} p50 ({floor_runs} processes each)",
        ms(p50(&entropy)),
        ms(p50(&handshake))
    );
    println!();
    println!(
        "| function | init p50, plain HTTP | init p50, TLS | TLS / (seeding + one handshake) |"
    );
    println!("| --- | --- | --- | --- |");
    for label in OVER_TLS {
        let (Some(plain), Some(tls)) = (find(label), find(&format!("{label} over TLS"))) else {
            continue;
        };
        println!(
            "| {label} | {} | {} | {:.2}x |",
            ms(p50(&plain.init)),
            ms(p50(&tls.init)),
            p50(&tls.init).as_secs_f64() / p50(&handshake).as_secs_f64().max(1e-9)
        );
    }
    println!();
    for (rust, python) in [
        ("login (Rust)", "login (Python ref)"),
        ("check-session (Rust)", "check-session (Python ref)"),
        (
            "login (Rust, single session) over TLS",
            "login (Python ref) over TLS",
        ),
        (
            "check-session (Rust) over TLS",
            "check-session (Python ref) over TLS",
        ),
    ] {
        let (Some(r), Some(p)) = (find(rust), find(python)) else {
            continue;
        };
        let ratio = |f: fn(&Row) -> Duration| f(p).as_secs_f64() / f(r).as_secs_f64().max(1e-9);
        println!(
            "{python} / {rust}: init p50 {:.1}x, first invocation {:.1}x, warm p50 {:.1}x",
            ratio(|row| percentile(&row.init, 50.0)),
            ratio(|row| percentile(&row.first, 50.0)),
            ratio(|row| percentile(&row.warm, 50.0)),
        );
    }
}
