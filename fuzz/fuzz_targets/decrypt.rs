//! The decrypt path on arbitrary bytes: base64 decoding of arbitrary text (also
//! as a session_key), and AES-CBC + unpad + JSON + watermark on arbitrary key,
//! iv and ciphertext.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use wxauth::domain::crypto::{EncryptedData, decode_base64, decrypt_open_data};
use wxauth::domain::phone::decrypt_phone;
use wxauth::domain::redact::SessionKey;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = decode_base64(text);
        if let Some(block) = EncryptedData::new(vec![0; 16], &[0; 16]) {
            let _ = decrypt_open_data(&SessionKey::new(text), &block, "wx");
        }
    }
    if data.len() < 33 {
        return;
    }
    let (key, rest) = data.split_at(16);
    let (iv, ciphertext) = rest.split_at(16);
    let key = SessionKey::new(STANDARD.encode(key));
    if let Some(encrypted) = EncryptedData::new(ciphertext.to_vec(), iv) {
        let _ = decrypt_phone(&key, &encrypted, "wx4f4bc4dec97d474b");
    }
});
