//! What a cold start cannot go below, measured as a process: `tls-floor
//! entropy` draws one random byte from AWS-LC (its one-time seeding from CPU
//! jitter and the OS) and exits; `tls-floor handshake <host:port> <ca.pem>`
//! makes one TLS handshake with rustls on AWS-LC (which seeds too) and exits.
//! The cold-start harness times each from process start to exit, beside the
//! functions' init over TLS.

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["entropy"] => {
            let mut byte = [0u8; 1];
            aws_lc_rs::rand::fill(&mut byte).map_err(|_| "the random generator failed".to_owned())
        }
        ["handshake", address, bundle] => handshake(address, bundle),
        _ => Err("usage: tls-floor entropy | tls-floor handshake <host:port> <ca.pem>".to_owned()),
    };
    if let Err(message) = outcome {
        eprintln!("tls-floor: {message}");
        std::process::exit(1);
    }
}

fn handshake(address: &str, bundle: &str) -> Result<(), String> {
    let text = std::fs::read(bundle).map_err(|err| format!("{bundle}: {err}"))?;
    let mut roots = rustls::RootCertStore::empty();
    for block in pem::parse_many(&text).map_err(|err| err.to_string())? {
        roots
            .add(CertificateDer::from(block.into_contents()))
            .map_err(|err| err.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| err.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    let name = ServerName::try_from(host.to_owned()).map_err(|err| err.to_string())?;
    let mut connection =
        rustls::ClientConnection::new(Arc::new(config), name).map_err(|err| err.to_string())?;
    let mut socket = TcpStream::connect(address).map_err(|err| err.to_string())?;
    while connection.is_handshaking() {
        connection
            .complete_io(&mut socket)
            .map_err(|err| format!("handshake: {err}"))?;
    }
    socket.flush().map_err(|err| err.to_string())
}
