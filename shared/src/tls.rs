//! Trust roots compiled into the binary (Mozilla's, from `webpki-root-certs`).
//!
//! By default both the AWS SDK and reqwest read the system's certificate
//! directory at start-up: about 300 files on Debian, most of a cold start's
//! file I/O. These roots cover every public CA that AWS endpoints and
//! api.weixin.qq.com chain to, and cost no I/O.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The roots as DER.
pub fn root_certificates() -> impl Iterator<Item = &'static [u8]> {
    webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|cert| cert.as_ref())
}

/// The roots as one PEM bundle, the form the AWS SDK's trust store takes.
pub fn root_certificates_pem() -> Vec<u8> {
    let mut pem = Vec::with_capacity(300 * 1024);
    for der in root_certificates() {
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        let text = STANDARD.encode(der);
        for line in text.as_bytes().chunks(64) {
            pem.extend_from_slice(line);
            pem.push(b'\n');
        }
        pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
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
}
