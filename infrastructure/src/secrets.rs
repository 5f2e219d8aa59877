//! Secrets at rest (CML credentials first): sealed with AES-256-GCM under one key, so they never
//! appear in events, read models, logs or answers in the clear.
//!
//! The key is `LABLET_SECRET_KEY` (32 bytes, base64url or standard base64) or, when that is unset,
//! `<data dir>/secret.key`, made on first use and readable by the owner only. A sealed secret is
//! `v1.<base64url(nonce ‖ ciphertext ‖ tag)>` with a random 96-bit nonce; it is bound to a
//! context (for example the worker's id) given as associated data, so a sealed value copied to
//! another worker does not open.

use crate::key_file::{read_key_file, write_new_key_file, KEY_BYTES};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use std::path::Path;

const VERSION_PREFIX: &str = "v1.";
/// The file the key is made in when `LABLET_SECRET_KEY` is unset.
pub const SECRET_KEY_FILE: &str = "secret.key";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretsError {
    #[error("LABLET_SECRET_KEY: {0}")]
    BadKey(String),
    #[error("the secret key file cannot be used: {0}")]
    KeyFile(String),
    #[error("the sealed secret is not one this key and context can open")]
    CannotOpen,
    #[error("the system random source failed")]
    Random,
}

/// The key given in `LABLET_SECRET_KEY`, kept out of `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKeyText(Vec<u8>);

impl std::fmt::Debug for SecretKeyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKeyText(..)")
    }
}

impl SecretKeyText {
    /// Parses 32 bytes given as base64url or standard base64.
    pub fn parse(text: &str) -> Result<Self, SecretsError> {
        let text = text.trim();
        let key = URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .or_else(|_| STANDARD.decode(text))
            .map_err(|_| SecretsError::BadKey("not base64".into()))?;
        if key.len() != KEY_BYTES {
            return Err(SecretsError::BadKey(format!(
                "must be {KEY_BYTES} bytes, not {}",
                key.len()
            )));
        }
        Ok(SecretKeyText(key))
    }
}

/// Seals and opens secrets under one key.
pub struct SecretBox {
    key: LessSafeKey,
    random: SystemRandom,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    fn with_key(key: &[u8]) -> Result<Self, SecretsError> {
        let unbound = UnboundKey::new(&AES_256_GCM, &key[..KEY_BYTES])
            .map_err(|_| SecretsError::BadKey("not an AES-256 key".into()))?;
        Ok(SecretBox {
            key: LessSafeKey::new(unbound),
            random: SystemRandom::new(),
        })
    }

    /// The box of the configured key, or of `<data_dir>/secret.key` (made if missing).
    pub fn open_or_create(configured: Option<&SecretKeyText>, data_dir: &Path) -> Result<Self, SecretsError> {
        if let Some(SecretKeyText(key)) = configured {
            return Self::with_key(key);
        }
        let file = data_dir.join(SECRET_KEY_FILE);
        let failed = |err: std::io::Error| SecretsError::KeyFile(err.to_string());
        let key = match read_key_file(&file).map_err(failed)? {
            Some(key) => key,
            None => write_new_key_file(&file).map_err(failed)?,
        };
        Self::with_key(&key)
    }

    /// `plaintext` sealed, bound to `context`.
    pub fn seal(&self, plaintext: &str, context: &str) -> Result<String, SecretsError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).map_err(|_| SecretsError::Random)?;
        let mut sealed = plaintext.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| SecretsError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{VERSION_PREFIX}{}", URL_SAFE_NO_PAD.encode(out)))
    }

    /// The plaintext of `sealed`, if it was sealed under this key and `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<String, SecretsError> {
        let bytes = sealed
            .strip_prefix(VERSION_PREFIX)
            .and_then(|body| URL_SAFE_NO_PAD.decode(body).ok())
            .filter(|bytes| bytes.len() > NONCE_LEN)
            .ok_or(SecretsError::CannotOpen)?;
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretsError::CannotOpen)?;
        let mut buffer = ciphertext.to_vec();
        let plaintext = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buffer)
            .map_err(|_| SecretsError::CannotOpen)?;
        String::from_utf8(plaintext.to_vec()).map_err(|_| SecretsError::CannotOpen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_context() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = SecretBox::open_or_create(None, dir.path()).unwrap();
        let sealed = secrets.seal("cml-admin-password", "worker-1").unwrap();
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("cml-admin-password"));
        assert_ne!(
            sealed,
            secrets.seal("cml-admin-password", "worker-1").unwrap(),
            "a fresh nonce each time"
        );
        assert_eq!(secrets.open(&sealed, "worker-1").unwrap(), "cml-admin-password");
        assert_eq!(
            secrets.open(&sealed, "worker-2"),
            Err(SecretsError::CannotOpen),
            "another context"
        );

        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(secrets.open(&tampered, "worker-1"), Err(SecretsError::CannotOpen));
        assert_eq!(secrets.open("v1.", "worker-1"), Err(SecretsError::CannotOpen));
        assert_eq!(secrets.open("plain", "worker-1"), Err(SecretsError::CannotOpen));

        let other_key = SecretKeyText::parse(&URL_SAFE_NO_PAD.encode([7u8; 32])).unwrap();
        let other = SecretBox::open_or_create(Some(&other_key), dir.path()).unwrap();
        assert_eq!(
            other.open(&sealed, "worker-1"),
            Err(SecretsError::CannotOpen),
            "another key"
        );
    }

    #[test]
    fn the_key_file_is_made_once_for_the_owner_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = SecretBox::open_or_create(None, dir.path()).unwrap();
        let sealed = first.seal("s3cret", "w").unwrap();
        let again = SecretBox::open_or_create(None, dir.path()).unwrap();
        assert_eq!(again.open(&sealed, "w").unwrap(), "s3cret");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SECRET_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(format!("{first:?}"), "SecretBox(..)");
    }

    #[test]
    fn a_configured_key_must_be_32_bytes_of_base64_and_never_prints() {
        let key = [9u8; 32];
        assert_eq!(
            SecretKeyText::parse(&STANDARD.encode(key)).unwrap(),
            SecretKeyText::parse(&URL_SAFE_NO_PAD.encode(key)).unwrap()
        );
        assert_eq!(
            format!("{:?}", SecretKeyText::parse(&STANDARD.encode(key)).unwrap()),
            "SecretKeyText(..)"
        );
        assert!(matches!(
            SecretKeyText::parse("not base64!"),
            Err(SecretsError::BadKey(_))
        ));
        let short = SecretKeyText::parse(&STANDARD.encode([1u8; 16])).unwrap_err();
        assert_eq!(short.to_string(), "LABLET_SECRET_KEY: must be 32 bytes, not 16");
    }
}
