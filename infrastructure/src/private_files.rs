//! Files at rest are the owner's alone: the data directory Lablet makes is 0700, and every
//! file it keeps there (the event log, the read models, key files) is 0600, so no other local
//! user can read events, documents or secrets. SQLite gives its `-wal` and `-shm` files the
//! mode of their database.
//!
//! An existing directory keeps its mode (the operator chose it); an existing database file
//! broader than 0600 is narrowed, since it is Lablet's.

use std::io;
use std::path::Path;

/// The mode of directories Lablet makes.
pub const DIR_MODE: u32 = 0o700;
/// The mode of files Lablet keeps.
pub const FILE_MODE: u32 = 0o600;

/// Makes `dir` and its missing parents, owner-only.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(dir)
}

/// Makes `file` (empty) owner-only if it does not exist, or narrows it to owner-only if it
/// does; its directory is made owner-only if missing.
///
/// An existing file is never opened here: closing any descriptor of a file drops every POSIX
/// lock this process holds on it, and SQLite's connections to it rely on theirs. Only a file
/// this call creates (so no connection has it yet) is opened, and `chmod` needs no descriptor.
pub fn prepare_private_file(file: &Path) -> io::Result<()> {
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    match options.open(file) {
        Ok(_) => return Ok(()),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(err),
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(FILE_MODE))?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_directories_and_files_are_owner_only_and_a_wide_file_is_narrowed() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("data/nested/lablet.db");
        prepare_private_file(&file).unwrap();
        assert_eq!(mode(&root.path().join("data")), DIR_MODE);
        assert_eq!(mode(&root.path().join("data/nested")), DIR_MODE);
        assert_eq!(mode(&file), FILE_MODE);
        std::fs::write(&file, b"kept").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        prepare_private_file(&file).unwrap();
        assert_eq!(mode(&file), FILE_MODE);
        assert_eq!(
            std::fs::read(&file).unwrap(),
            b"kept",
            "an existing file keeps its content"
        );
    }
}
