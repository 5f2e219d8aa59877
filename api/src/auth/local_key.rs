//! The local HS256 signing key of the embedded default, kept in the data directory.
//!
//! `hs256.key` holds the current key (32 random bytes, base64url, readable by the owner only);
//! `lablet token rotate-key` moves it to `hs256.previous.key` and writes a new one, so tokens
//! signed before a rotation stay valid until they expire (or until the next rotation). Tokens
//! name their key by `kid` (the first 16 hex digits of the key's SHA-256); a running server
//! rereads the files when it meets a `kid` it does not know.

use jsonwebtoken::{DecodingKey, EncodingKey};
use lablet_infrastructure::key_file::{read_key_file, write_new_key_file};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

/// How often unknown `kid`s may make the server reread the key files.
const RELOAD_AT_MOST_EVERY: Duration = Duration::from_secs(1);

struct LocalKey {
    kid: String,
    secret: Vec<u8>,
}

pub struct LocalKeys {
    file: PathBuf,
    /// The current key first, then the previous one if there is one.
    keys: RwLock<Vec<LocalKey>>,
    last_reload: Mutex<Instant>,
}

fn key_id(secret: &[u8]) -> String {
    Sha256::digest(secret)[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn previous_file(file: &Path) -> PathBuf {
    file.with_file_name("hs256.previous.key")
}

fn read_key(file: &Path) -> std::io::Result<Option<LocalKey>> {
    Ok(read_key_file(file)?.map(|secret| LocalKey {
        kid: key_id(&secret),
        secret,
    }))
}

/// Writes a new random key to `file` (readable by the owner only).
fn write_new_key(file: &Path) -> std::io::Result<()> {
    write_new_key_file(file).map(|_| ())
}

fn read_keys(file: &Path) -> std::io::Result<Vec<LocalKey>> {
    let current = read_key(file)?
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, format!("{} is missing", file.display())))?;
    let mut keys = vec![current];
    keys.extend(read_key(&previous_file(file))?);
    Ok(keys)
}

impl LocalKeys {
    /// The keys in `file` (and its previous key), creating a first key if there is none.
    pub fn load_or_create(file: &Path) -> std::io::Result<LocalKeys> {
        if read_key(file)?.is_none() {
            write_new_key(file)?;
        }
        Ok(LocalKeys {
            file: file.to_owned(),
            keys: RwLock::new(read_keys(file)?),
            last_reload: Mutex::new(Instant::now()),
        })
    }

    /// Makes a new current key; the old one becomes the previous key. Answers the new `kid`.
    pub fn rotate(file: &Path) -> std::io::Result<String> {
        if read_key(file)?.is_some() {
            std::fs::rename(file, previous_file(file))?;
        }
        write_new_key(file)?;
        read_keys(file).map(|keys| keys[0].kid.clone())
    }

    /// The current key's id and signing key.
    pub fn signing_key(&self) -> (String, EncodingKey) {
        let keys = self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        (keys[0].kid.clone(), EncodingKey::from_secret(&keys[0].secret))
    }

    fn find(&self, kid: &str) -> Option<DecodingKey> {
        let keys = self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        keys.iter()
            .find(|key| key.kid == kid)
            .map(|key| DecodingKey::from_secret(&key.secret))
    }

    /// The key a token names; an unknown `kid` rereads the files (a rotation since start).
    pub fn decoding_key(&self, kid: &str) -> Option<DecodingKey> {
        if let Some(key) = self.find(kid) {
            return Some(key);
        }
        {
            let mut last = self.last_reload.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if last.elapsed() < RELOAD_AT_MOST_EVERY {
                return None;
            }
            *last = Instant::now();
        }
        match read_keys(&self.file) {
            Ok(fresh) => *self.keys.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh,
            Err(err) => tracing::warn!(error = %err, "cannot reread the local signing keys"),
        }
        self.find(kid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_made_once_and_rotation_keeps_the_previous_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("auth").join("hs256.key");
        let first = LocalKeys::load_or_create(&file).unwrap();
        let (kid, _) = first.signing_key();
        let again = LocalKeys::load_or_create(&file).unwrap();
        assert_eq!(again.signing_key().0, kid, "an existing key is kept");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "only the owner may read the key");
        }
        let rotated = LocalKeys::rotate(&file).unwrap();
        assert_ne!(rotated, kid);
        std::thread::sleep(RELOAD_AT_MOST_EVERY);
        assert!(
            first.decoding_key(&rotated).is_some(),
            "an unknown kid rereads the files"
        );
        assert!(first.decoding_key(&kid).is_some(), "the previous key still verifies");
        assert_eq!(first.signing_key().0, rotated);
        assert!(first.decoding_key("0000000000000000").is_none());
    }
}
