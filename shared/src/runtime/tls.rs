//! Trust roots compiled into the binary (Mozilla's, from `webpki-root-certs`),
//! and the certificates of `AWS_CA_BUNDLE` on top of them.
//!
//! By default both the AWS SDK and reqwest read the system's certificate
//! directory at start-up: about 300 files on Debian, most of a cold start's
//! file I/O. These roots cover every public CA that AWS endpoints and
//! api.weixin.qq.com chain to, and cost no I/O. `AWS_CA_BUNDLE`, the AWS SDKs'
//! standard variable, names a PEM file of more CAs to trust (a corporate
//! proxy, a private endpoint, a test run's own CA): the AWS clients and the
//! WeChat client trust them alike.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::runtime::config::{ConfigError, Lookup};

/// The AWS SDKs' variable for a PEM bundle of extra trusted certificates.
pub const CA_BUNDLE_VARIABLE: &str = "AWS_CA_BUNDLE";

/// The certificates (DER) of the bundle `AWS_CA_BUNDLE` names; none when it
/// is unset. An unreadable file or one with no certificate is an error
/// naming the variable: trusting less than was asked for would fail later,
/// and obscurely, at the first handshake.
pub fn ca_bundle(env: &impl Lookup) -> Result<Vec<Vec<u8>>, ConfigError> {
    let Some(path) = env
        .var(CA_BUNDLE_VARIABLE)
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
    else {
        return Ok(Vec::new());
    };
    let invalid = |reason| ConfigError::Invalid {
        name: CA_BUNDLE_VARIABLE,
        reason,
    };
    let text = std::fs::read(&path).map_err(|_| invalid("must name a readable PEM file"))?;
    let certificates: Vec<Vec<u8>> = pem::parse_many(&text)
        .map_err(|_| invalid("must name a PEM file of certificates"))?
        .into_iter()
        .filter(|block| block.tag() == "CERTIFICATE")
        .map(|block| block.into_contents())
        .collect();
    if certificates.is_empty() {
        return Err(invalid("names a file with no PEM certificate in it"));
    }
    Ok(certificates)
}

/// The process's extra roots: `AWS_CA_BUNDLE`'s, read once. The functions
/// check the variable at start-up (`check_ca_bundle`), so an error here can
/// only reach a tool that did not: it trusts the compiled-in roots alone.
pub fn extra_roots() -> &'static [Vec<u8>] {
    static EXTRA: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    EXTRA.get_or_init(|| {
        ca_bundle(&crate::runtime::config::ProcessEnv).unwrap_or_else(|err| {
            tracing::warn!(error = %err, "AWS_CA_BUNDLE ignored");
            Vec::new()
        })
    })
}

/// Start-up's check of `AWS_CA_BUNDLE`: the error names the variable.
pub fn check_ca_bundle() -> Result<(), ConfigError> {
    ca_bundle(&crate::runtime::config::ProcessEnv).map(|_| ())
}

/// Every trusted root as DER: the compiled-in ones and the bundle's.
pub fn trusted_roots() -> impl Iterator<Item = &'static [u8]> {
    root_certificates().chain(extra_roots().iter().map(Vec::as_slice))
}

/// Every trusted root as one PEM bundle, the form the AWS SDK's trust store
/// takes.
pub fn trusted_roots_pem() -> Vec<u8> {
    let mut pem = root_certificates_pem();
    for der in extra_roots() {
        pem.extend_from_slice(&der_to_pem(der));
    }
    pem
}

fn der_to_pem(der: &[u8]) -> Vec<u8> {
    let mut pem = Vec::with_capacity(der.len() * 4 / 3 + 64);
    pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
    let text = STANDARD.encode(der);
    for line in text.as_bytes().chunks(64) {
        pem.extend_from_slice(line);
        pem.push(b'\n');
    }
    pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    pem
}

/// The roots as DER.
pub fn root_certificates() -> impl Iterator<Item = &'static [u8]> {
    webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|cert| cert.as_ref())
}

/// The compiled-in roots as one PEM bundle.
pub fn root_certificates_pem() -> Vec<u8> {
    let mut pem = Vec::with_capacity(300 * 1024);
    for der in root_certificates() {
        pem.extend_from_slice(&der_to_pem(der));
    }
    pem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_holds_the_roots_aws_and_wechat_chain_to() {
        let pem = String::from_utf8(root_certificates_pem()).unwrap();
        let count = pem.matches("BEGIN CERTIFICATE").count();
        assert!(count > 100, "{count}");
        assert_eq!(count, root_certificates().count());
        // Amazon Root CA 1 (AWS endpoints) and DigiCert Global Root G2 (api.weixin.qq.com),
        // found by their subject names inside the DER.
        let has =
            |name: &[u8]| root_certificates().any(|der| der.windows(name.len()).any(|w| w == name));
        assert!(has(b"Amazon Root CA 1"));
        assert!(has(b"Starfield Services Root Certificate Authority - G2"));
        assert!(has(b"DigiCert Global Root G2"));
    }

    #[test]
    fn the_ca_bundle_adds_its_certificates_and_a_bad_one_is_named() {
        let env = |value: Option<String>| {
            move |name: &str| {
                (name == CA_BUNDLE_VARIABLE)
                    .then(|| value.clone())
                    .flatten()
            }
        };
        assert_eq!(ca_bundle(&env(None)).unwrap().len(), 0);
        let dir = std::env::temp_dir().join(format!("wxauth-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let two = dir.join("two.pem");
        let ders: Vec<&[u8]> = root_certificates().take(2).collect();
        let text: Vec<u8> = ders.iter().flat_map(|der| der_to_pem(der)).collect();
        std::fs::write(&two, &text).unwrap();
        let read = ca_bundle(&env(Some(two.display().to_string()))).unwrap();
        assert_eq!(read, ders.iter().map(|d| d.to_vec()).collect::<Vec<_>>());
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        for bad in [empty, dir.join("missing.pem")] {
            let err = ca_bundle(&env(Some(bad.display().to_string()))).unwrap_err();
            assert!(err.to_string().contains(CA_BUNDLE_VARIABLE), "{err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
