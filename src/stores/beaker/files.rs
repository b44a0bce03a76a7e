//! Beaker's `file` backend (`beaker.container.FileNamespaceManager`): the session of id
//! `ID` is the file `data_dir/container_file/ID[0]/ID[0:2]/ID.cache` holding
//! `pickle.dumps({'session': value})`, written through `ID.cache.temp` and a rename. Beaker
//! guards it with `flock` on `data_dir/container_file_lock/H[0]/H[0:2]/H.lock`, `H` being
//! the hex SHA-1 of the id (shared to read, exclusive to write); this store takes the same
//! locks, so a read-compare-write here and a save there never interleave.

use std::fs::File;
use std::io::{ErrorKind, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use sha1::Digest as _;

use super::{Backend, BeakerStore, Found};
use crate::legacy::beaker::BeakerStored;
use crate::legacy::pickle::{Limits, from_pickle, to_pickle};
use crate::stores::worker::Worker;
use crate::stores::{BoxFuture, StoreError, private};

struct Files {
    root: Arc<PathBuf>,
    worker: Worker<()>,
}

impl std::fmt::Debug for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("file")
            .field("data_dir", &self.root)
            .finish()
    }
}

impl BeakerStore {
    /// Sessions in the directory a Beaker application with `session.type = file` and
    /// `session.data_dir = data_dir` uses, in `value`'s format, expiring after `timeout`
    /// (`session.timeout`) without access. Run both applications as one user: the
    /// directory must belong to this process's user and be writable by no one else (as
    /// for [`FileStore`](crate::store::FileStore)).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use cookie_session::beaker::{BeakerSerializer, BeakerStored};
    /// use cookie_session::store::BeakerStore;
    /// let store = BeakerStore::files(
    ///     "/var/lib/myapp/sessions",
    ///     BeakerStored::new(BeakerSerializer::Pickle),
    ///     Duration::from_secs(1200),
    /// )?;
    /// # Ok::<(), cookie_session::store::StoreError>(())
    /// ```
    ///
    /// # Errors
    /// [`StoreError::Misconfigured`] for a directory another user owns or may write;
    /// [`StoreError::Unavailable`] if it cannot be created.
    pub fn files(
        data_dir: impl AsRef<Path>,
        value: BeakerStored,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let root = data_dir.as_ref().to_path_buf();
        private::directory(&root)?;
        private::directory(&root.join("container_file"))?;
        private::directory(&root.join("container_file_lock"))?;
        let worker = Worker::start("cookie-session beaker files", || Ok(()))?;
        let backend = Files {
            root: Arc::new(root),
            worker,
        };
        Ok(Self::with_backend(Arc::new(backend), value, timeout))
    }
}

/// `util.encoded_path(root, [ident], extension)` with `depth = 3`: `root/i[0]/i[0:2]/i.ext`.
fn encoded(root: &Path, ident: &str, extension: &str) -> Result<PathBuf, StoreError> {
    let (Some(first), Some(two)) = (ident.get(..1), ident.get(..2)) else {
        return Err(StoreError::Corrupt);
    };
    let dir = root.join(first).join(two);
    private::directory(&dir)?;
    Ok(dir.join(format!("{ident}{extension}")))
}

/// Where the session of `id` is kept, and its lock file.
fn paths(root: &Path, id: &str) -> Result<(PathBuf, PathBuf), StoreError> {
    let data = encoded(&root.join("container_file"), id, ".cache")?;
    let digest = base16ct::lower::encode_string(&sha1::Sha1::digest(id.as_bytes()));
    let lock = encoded(&root.join("container_file_lock"), &digest, ".lock")?;
    Ok((data, lock))
}

fn io(path: &Path, error: &std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("{}: {error}", path.display()).into())
}

/// Beaker's lock on one namespace, held until dropped.
fn lock(path: &Path, exclusive: bool) -> Result<File, StoreError> {
    let file = private::options()
        .create(true)
        .read(true)
        .write(true)
        .truncate(false)
        .open(path)
        .map_err(|e| io(path, &e))?;
    let locked = if exclusive {
        file.lock()
    } else {
        file.lock_shared()
    };
    locked.map_err(|e| io(path, &e))?;
    Ok(file)
}

/// The file's bytes and the session value in them (`None`: no file, or no `session` key,
/// which is how Beaker leaves a deleted session).
fn read(path: &Path) -> Result<Option<Found>, StoreError> {
    let mut raw = Vec::new();
    match File::open(path) {
        Ok(file) => {
            let limit = Limits::default().max_bytes as u64;
            file.take(limit + 1)
                .read_to_end(&mut raw)
                .map_err(|e| io(path, &e))?;
        }
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path, &e)),
    }
    let value = match from_pickle(&raw, &Limits::default()) {
        Ok(hash) => match hash.get("session") {
            Some(Value::String(text)) => text.clone().into_bytes(),
            None => return Ok(None),
            // Not a value Beaker writes: handed on as unreadable.
            Some(_) => Vec::new(),
        },
        Err(_) => Vec::new(),
    };
    Ok(Some(Found { value, raw }))
}

/// Writes `value` as Beaker's file for a session (`None`: removes the file), as
/// `util.safe_write` does: a temporary file beside it, then a rename.
fn write(path: &Path, value: Option<&[u8]>) -> Result<(), StoreError> {
    let Some(value) = value else {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(io(path, &e)),
            _ => Ok(()),
        };
    };
    let text = std::str::from_utf8(value).map_err(|_| StoreError::Corrupt)?;
    let mut hash = Map::new();
    hash.insert("session".into(), Value::String(text.to_owned()));
    let pickled = to_pickle(&hash).map_err(|e| StoreError::Unavailable(Box::new(e)))?;
    let mut temp = path.as_os_str().to_owned();
    temp.push(".temp");
    let temp = PathBuf::from(temp);
    let mut file = private::options()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&temp)
        .map_err(|e| io(&temp, &e))?;
    file.write_all(&pickled).map_err(|e| io(&temp, &e))?;
    drop(file);
    std::fs::rename(&temp, path).map_err(|e| io(path, &e))
}

/// Whether what is under `path` is still `expected` (`None`: nothing).
fn unchanged(path: &Path, expected: Option<&[u8]>) -> Result<bool, StoreError> {
    let current = read(path)?;
    Ok(current.as_ref().map(|f| f.raw.as_slice()) == expected)
}

impl Backend for Files {
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Found>, StoreError>> {
        let (root, id) = (Arc::clone(&self.root), id.to_owned());
        Box::pin(self.worker.run(move |()| {
            let (data, lock_path) = paths(&root, &id)?;
            let _lock = lock(&lock_path, false)?;
            read(&data)
        }))
    }

    fn swap<'a>(
        &'a self,
        id: &'a str,
        expected: Option<&'a [u8]>,
        new: Option<&'a [u8]>,
        _keep: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let (root, id) = (Arc::clone(&self.root), id.to_owned());
        let (expected, new) = (expected.map(<[u8]>::to_vec), new.map(<[u8]>::to_vec));
        Box::pin(self.worker.run(move |()| {
            let (data, lock_path) = paths(&root, &id)?;
            let _lock = lock(&lock_path, true)?;
            if !unchanged(&data, expected.as_deref())? {
                return Ok(false);
            }
            write(&data, new.as_deref())?;
            Ok(true)
        }))
    }

    fn relocate<'a>(
        &'a self,
        from: &'a str,
        from_raw: &'a [u8],
        to: &'a str,
        to_raw: Option<&'a [u8]>,
        value: &'a [u8],
        _keep: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let root = Arc::clone(&self.root);
        let (from, to) = (from.to_owned(), to.to_owned());
        let (from_raw, to_raw) = (from_raw.to_vec(), to_raw.map(<[u8]>::to_vec));
        let value = value.to_vec();
        Box::pin(self.worker.run(move |()| {
            let (from_data, from_lock) = paths(&root, &from)?;
            let (to_data, to_lock) = paths(&root, &to)?;
            // Both namespaces locked, in one order for every process of this store (Beaker
            // never holds two).
            let (first, second) = if from_lock <= to_lock {
                (&from_lock, &to_lock)
            } else {
                (&to_lock, &from_lock)
            };
            let _first = lock(first, true)?;
            let _second = lock(second, true)?;
            if !unchanged(&from_data, Some(&from_raw))? || !unchanged(&to_data, to_raw.as_deref())?
            {
                return Ok(false);
            }
            write(&to_data, Some(&value))?;
            write(&from_data, None)?;
            Ok(true)
        }))
    }
}
