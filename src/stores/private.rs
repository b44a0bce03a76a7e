//! Files and directories only this process's user can read or write: what the file and
//! SQLite stores keep sessions in (session data, and lock files whose `flock` another user
//! could otherwise hold forever).
//!
//! Directories are made `0700` and files `0600` by explicit modes, whatever the umask (a
//! umask only removes bits). A directory or file that already exists must belong to this
//! process's user and be writable by no one else: otherwise another local user could read
//! records, plant one, or swap a file for a link, and the store refuses to open with
//! [`StoreError::Misconfigured`].

use std::fs::{self, OpenOptions};
use std::path::Path;

use super::StoreError;

#[cfg(unix)]
use std::os::unix::fs::{
    DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
};

/// Group- and other-write bits.
#[cfg(unix)]
#[cfg_attr(not(feature = "files"), allow(dead_code))]
const WRITABLE_BY_OTHERS: u32 = 0o022;

/// Creates `path` (and missing parents) as `0700`, or checks an existing one: owned by this
/// process's user, writable by no one else; an existing one is then narrowed to `0700`.
#[cfg_attr(not(feature = "files"), allow(dead_code))]
pub(crate) fn directory(path: &Path) -> Result<(), StoreError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(path).map_err(|e| unavailable(path, e))?;
    let meta = fs::metadata(path).map_err(|e| unavailable(path, e))?;
    if !meta.is_dir() {
        return Err(StoreError::Misconfigured(format!(
            "{} is not a directory",
            path.display()
        )));
    }
    #[cfg(unix)]
    {
        owned_by_us(path, &meta)?;
        if meta.mode() & WRITABLE_BY_OTHERS != 0 {
            return Err(StoreError::Misconfigured(format!(
                "the session directory {} is writable by other users (mode {:o}), who could plant or replace records; `chmod 700` it or use a new directory",
                path.display(),
                meta.mode() & 0o7777
            )));
        }
        if meta.mode() & 0o077 != 0 {
            fs::set_permissions(path, fs::Permissions::from_mode(0o700))
                .map_err(|e| unavailable(path, e))?;
        }
    }
    Ok(())
}

/// Checks the file at `path` if it exists: it must be this process's user's, and is
/// narrowed to `0600`. If it does not, `create` makes it empty as `0600` (so that what
/// opens it next, SQLite, keeps that mode and gives it to the files it makes beside it).
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn file(path: &Path, create: bool) -> Result<(), StoreError> {
    match fs::symlink_metadata(path) {
        Ok(meta) => {
            if !meta.is_file() {
                return Err(StoreError::Misconfigured(format!(
                    "{} is not a regular file",
                    path.display()
                )));
            }
            #[cfg(unix)]
            {
                owned_by_us(path, &meta)?;
                if meta.mode() & 0o077 != 0 {
                    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
                        .map_err(|e| unavailable(path, e))?;
                }
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !create => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            match options().write(true).create_new(true).open(path) {
                Ok(_) => Ok(()),
                // Another process made it meanwhile: check theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => file(path, false),
                Err(e) => Err(unavailable(path, e)),
            }
        }
        Err(e) => Err(unavailable(path, e)),
    }
}

/// Options that create files as `0600`.
pub(crate) fn options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    options.mode(0o600);
    options
}

#[cfg(unix)]
fn owned_by_us(path: &Path, meta: &fs::Metadata) -> Result<(), StoreError> {
    let ours = rustix::process::geteuid().as_raw();
    if meta.uid() == ours {
        return Ok(());
    }
    Err(StoreError::Misconfigured(format!(
        "{} belongs to user {}, not to this process's user {ours}: another user could read or replace the sessions; give the store a path of its own",
        path.display(),
        meta.uid()
    )))
}

fn unavailable(path: &Path, error: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("{}: {error}", path.display()).into())
}
