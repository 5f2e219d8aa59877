//! Key files in the data directory: 32 random bytes as base64url text, readable by the owner
//! only, written through a temporary file so that a crash never leaves half a key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SecureRandom;
use std::io::Write;
use std::path::Path;

/// Bytes of every key this module makes, and the fewest it accepts.
pub const KEY_BYTES: usize = 32;

/// The key in `file`, or `None` when there is no such file.
pub fn read_key_file(file: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let invalid = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{} {why}", file.display()));
    match std::fs::read_to_string(file) {
        Ok(text) => {
            let key = URL_SAFE_NO_PAD
                .decode(text.trim())
                .map_err(|_| invalid("does not hold a base64url key"))?;
            if key.len() < KEY_BYTES {
                return Err(invalid("holds a key shorter than 32 bytes"));
            }
            Ok(Some(key))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// Writes a new random key to `file` (mode 0600) and answers it.
pub fn write_new_key_file(file: &Path) -> std::io::Result<Vec<u8>> {
    let mut key = vec![0u8; KEY_BYTES];
    ring::rand::SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| std::io::Error::other("the system random source failed"))?;
    if let Some(dir) = file.parent() {
        crate::private_files::create_private_dir(dir)?;
    }
    let temporary = file.with_extension("key.new");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options.open(&temporary)?;
    out.write_all(URL_SAFE_NO_PAD.encode(&key).as_bytes())?;
    out.sync_all()?;
    std::fs::rename(&temporary, file)?;
    Ok(key)
}
