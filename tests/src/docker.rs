//! Docker for the `sam local` tests: the daemon `infra/test.sh` points
//! `DOCKER_HOST` at, and the host's stand-ins on each function container's own
//! loopback.
//!
//! SAM CLI creates every function container on Docker's default bridge, whatever
//! `--docker-network` says (`host` only skips connecting it to a second network;
//! aws/aws-sam-cli#669, #4236), so a container's 127.0.0.1 is its own. The
//! functions accept a plain-http WeChat base only on loopback, because the
//! appsecret travels in those requests. So, as Docker starts each SAM container,
//! the harness adds a DNAT rule in the container's network namespace that sends
//! 127.0.0.1:<port> to a forwarder on the bridge address, which passes the
//! connection on to the stand-in on the host's loopback. The functions, SAM and
//! the image are untouched, and the endpoints in the functions' environment are
//! the same URLs the other end-to-end tests use.

use std::net::IpAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::proxy::{CountingProxy, Counts};

/// Docker's label on every container SAM CLI runs a function in.
const SAM_LABEL: &str = "sam.cli.container.type=lambda";

/// Runs `docker args...` and returns its trimmed standard output.
pub async fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("docker {args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The host's address on Docker's default bridge (`docker0`, 172.17.0.1 by default).
pub async fn bridge_address() -> IpAddr {
    let gateway = docker(&[
        "network",
        "inspect",
        "bridge",
        "--format",
        "{{range .IPAM.Config}}{{.Gateway}}{{end}}",
    ])
    .await
    .expect("docker network inspect bridge");
    if let Ok(address) = gateway.parse() {
        return address;
    }
    // Older daemons leave the gateway out of IPAM: read it off the interface.
    let name = docker(&[
        "network",
        "inspect",
        "bridge",
        "--format",
        r#"{{index .Options "com.docker.network.bridge.name"}}"#,
    ])
    .await
    .expect("the bridge's interface name");
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "dev", &name])
        .output()
        .await
        .expect("ip addr");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .skip_while(|word| *word != "inet")
        .nth(1)
        .and_then(|cidr| cidr.split('/').next())
        .and_then(|ip| ip.parse().ok())
        .unwrap_or_else(|| panic!("no IPv4 address on {name}: {text}"))
}

/// The host's loopback stand-ins, reachable at the same `127.0.0.1` URLs from
/// inside every SAM function container started while this lives.
pub struct LoopbackBridge {
    forwarders: Vec<(String, CountingProxy)>,
    attached: Arc<Mutex<Vec<String>>>,
    failures: Arc<Mutex<Vec<String>>>,
    events: Child,
}

impl LoopbackBridge {
    /// `endpoints`: `http://127.0.0.1:<port>` URLs of the host's stand-ins.
    pub async fn start(endpoints: &[&str]) -> Self {
        let bridge = bridge_address().await;
        let mut forwarders = Vec::new();
        let mut rules = vec!["sysctl -qw net.ipv4.conf.all.route_localnet=1".to_owned()];
        for endpoint in endpoints {
            let port = loopback_port(endpoint);
            let proxy = CountingProxy::start_on(bridge, endpoint).await;
            let to = proxy.endpoint.trim_start_matches("http://").to_owned();
            rules.push(format!(
                "iptables -t nat -A OUTPUT -d 127.0.0.1/32 -p tcp --dport {port} -j DNAT --to-destination {to}"
            ));
            forwarders.push(((*endpoint).to_owned(), proxy));
        }
        // The source stays 127.0.0.1 after DNAT; the bridge would drop it.
        rules.push(format!(
            "iptables -t nat -A POSTROUTING -d {bridge}/32 -j MASQUERADE"
        ));
        let script = rules.join(" && ");

        // Events from a second before now: none is missed between this call and
        // the stream's start.
        let since = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
            - 1)
        .to_string();
        let mut events = Command::new("docker")
            .args([
                "events",
                "--since",
                &since,
                "--filter",
                "type=container",
                "--filter",
                "event=start",
                "--filter",
                &format!("label={SAM_LABEL}"),
                "--format",
                "{{.ID}}",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("docker events");
        let attached = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let lines = events.stdout.take().expect("events stdout");
        let (done, failed) = (Arc::clone(&attached), Arc::clone(&failures));
        tokio::spawn(async move {
            let mut lines = BufReader::new(lines).lines();
            while let Ok(Some(id)) = lines.next_line().await {
                match attach(&id, &script).await {
                    Ok(()) => done.lock().expect("attached").push(id),
                    Err(error) => failed.lock().expect("failures").push(error),
                }
            }
        });
        Self {
            forwarders,
            attached,
            failures,
            events,
        }
    }

    /// Containers given the stand-ins so far.
    pub fn attached(&self) -> Vec<String> {
        self.attached.lock().expect("attached").clone()
    }

    /// Waits until `n` containers have been attached (at most `within`).
    pub async fn wait_attached(&self, n: usize, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        loop {
            let failures = self.failures.lock().expect("failures").clone();
            assert!(failures.is_empty(), "attaching containers: {failures:?}");
            let attached = self.attached();
            if attached.len() >= n || Instant::now() > deadline {
                return attached;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What the containers sent to the stand-in at `endpoint`.
    pub fn counts(&self, endpoint: &str) -> Counts {
        self.forwarders
            .iter()
            .find(|(e, _)| e == endpoint)
            .map(|(_, proxy)| proxy.counts())
            .unwrap_or_else(|| panic!("no forwarder for {endpoint}"))
    }

    pub async fn stop(mut self) {
        let _ = self.events.start_kill();
        let _ = self.events.wait().await;
    }
}

fn loopback_port(endpoint: &str) -> u16 {
    let authority = endpoint
        .strip_prefix("http://127.0.0.1:")
        .unwrap_or_else(|| panic!("{endpoint}: not an http://127.0.0.1:<port> URL"));
    authority
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|e| panic!("{endpoint}: {e}"))
}

/// The rules, in the network namespace of container `id` (its init's).
async fn attach(id: &str, script: &str) -> Result<(), String> {
    let pid = docker(&["inspect", "--format", "{{.State.Pid}}", id]).await?;
    let out = Command::new("nsenter")
        .args(["-t", &pid, "-n", "sh", "-c", script])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("nsenter: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "container {id} (pid {pid}): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
