//! Sessions as files (feature `files`): see [`FileStore`].

use std::fs::{self, File, TryLockError};
use std::future::Future;
use std::io::{ErrorKind, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::worker::Worker;
use super::{Record, SessionStore, StoreError, StoreKey, Version, check_size, datetime, private};

/// Sessions as one file per session under a directory (feature `files`): no server and no
/// library, shared by the processes of one machine.
///
/// Each file is written whole to a temporary file beside it and renamed into place, so a
/// reader never sees half a record (see [`with_synced_writes`](Self::with_synced_writes)
/// for power losses). Writers of the same
/// sessions coordinate through an advisory lock (`File::lock`) held only around the
/// version check and the rename, never while data is written; the lock is one of 16
/// stripe files, by the key's first hex digit, so unrelated sessions rarely wait on each
/// other. The TurboGears documents call CherryPy's file store slow because it locks each
/// session for the whole request; this one never does.
///
/// A file is `CSF1`, the version (8 bytes, big-endian), the expiry (UNIX seconds, 8 bytes,
/// big-endian), then the data; it is named by the store key in hex (never the session
/// id). A file that is not in this format is treated as absent. [`sweep`] walks the
/// directory and stops after `max` removals; it also removes temporary files a crash left
/// behind (older than an hour). The file system's own calls run on a dedicated thread, so
/// an async runtime's threads never block on them.
///
/// Only the process's user can reach the sessions: the directory is `0700` and every file
/// in it `0600`, whatever the umask; `open` refuses a directory that another user owns or
/// may write. A lock another process holds for longer than the
/// [lock timeout](Self::with_lock_timeout) is an error, not a hang.
///
/// ```
/// use cookie_session::store::{FileStore, SessionStore, StoreKey, block_on};
/// # use cookie_session::time::{Duration, OffsetDateTime};
/// # let dir = std::env::temp_dir().join(format!("cookie-session-doc-{}", std::process::id()));
/// let store = FileStore::open(&dir)?;
/// let now = OffsetDateTime::now_utc();
/// let key = StoreKey::from_bytes([7; 32]);
/// block_on(store.create(&key, b"{}", now + Duration::minutes(20), now))?;
/// assert!(block_on(store.load(&key, now))?.is_some());
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), cookie_session::store::StoreError>(())
/// ```
///
/// [`sweep`]: SessionStore::sweep
#[derive(Debug)]
pub struct FileStore {
    worker: Worker<Dir>,
    max_record: usize,
}

/// The directory, owned by the worker thread.
struct Dir {
    path: PathBuf,
    sync: bool,
    lock_timeout: Duration,
}

/// How long an operation waits for a stripe lock by default, as the network stores bound
/// each operation.
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

const MAGIC: &[u8; 4] = b"CSF1";
const HEADER: usize = 20;
const SUFFIX: &str = ".session";
const TEMP: &str = ".tmp-";

fn io(error: std::io::Error) -> StoreError {
    StoreError::Unavailable(Box::new(error))
}

/// A record's header, read from its file.
#[derive(Clone, Copy)]
struct Header {
    version: u64,
    expires: i64,
}

impl Header {
    fn parse(bytes: &[u8]) -> Option<Self> {
        let (magic, rest) = bytes.split_first_chunk::<4>()?;
        let (version, rest) = rest.split_first_chunk::<8>()?;
        let (expires, _) = rest.split_first_chunk::<8>()?;
        (magic == MAGIC).then(|| Self {
            version: u64::from_be_bytes(*version),
            expires: i64::from_be_bytes(*expires),
        })
    }

    fn live(self, now: i64) -> bool {
        self.expires > now
    }
}

impl FileStore {
    /// A store in `dir`, created (`0700`) if it does not exist; an existing directory is
    /// narrowed to `0700`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the directory cannot be created or read;
    /// [`StoreError::Misconfigured`] if it belongs to another user or other users may
    /// write it.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = dir.as_ref().to_owned();
        let worker = Worker::start("cookie-session-files", move || {
            private::directory(&path)?;
            Ok(Dir {
                path,
                sync: false,
                lock_timeout: DEFAULT_LOCK_TIMEOUT,
            })
        })?;
        Ok(Self {
            worker,
            max_record: 1 << 20,
        })
    }

    /// The largest record's data; larger is [`StoreError::TooLarge`]. Default 1 MiB.
    #[must_use]
    pub const fn with_max_record_size(mut self, bytes: usize) -> Self {
        self.max_record = bytes;
        self
    }

    /// Whether each write waits for the disk (`fsync`) before it replaces the old record.
    /// Default off: about 20x more writes per second here, and a power loss can then
    /// leave a record's last write incomplete, which loads as no session (the visitor
    /// logs in again), never as another's data or a partial one. On for sessions that must
    /// survive a power loss.
    #[must_use]
    pub fn with_synced_writes(self, sync: bool) -> Self {
        self.on_worker(move |dir| dir.sync = sync)
    }

    /// How long an operation waits for a lock another process holds before it fails with
    /// [`StoreError::Unavailable`] (the request gets a 503, not a hang). Default 5 s.
    #[must_use]
    pub fn with_lock_timeout(self, timeout: Duration) -> Self {
        self.on_worker(move |dir| dir.lock_timeout = timeout)
    }

    fn on_worker(self, change: impl FnOnce(&mut Dir) + Send + 'static) -> Self {
        // The setting lives with the directory, on the worker thread.
        drop(self.worker.run(move |dir| {
            change(dir);
            Ok(())
        }));
        self
    }
}

impl Dir {
    fn file(&self, key: &StoreKey) -> PathBuf {
        self.path.join(format!("{key}{SUFFIX}"))
    }

    /// Holds the stripe locks of `keys` (in a fixed order, so two renames cannot
    /// deadlock) until the returned files are dropped.
    fn lock(&self, keys: &[&StoreKey]) -> Result<Vec<File>, StoreError> {
        let mut stripes: Vec<u8> = keys.iter().map(|k| k.0[0] >> 4).collect();
        stripes.sort_unstable();
        stripes.dedup();
        stripes
            .into_iter()
            .map(|stripe| {
                let path = self.path.join(format!(".lock-{stripe:x}"));
                let file = private::options()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)
                    .map_err(io)?;
                lock_within(&file, self.lock_timeout).map_err(|e| match e {
                    Some(e) => io(e),
                    None => StoreError::Unavailable(
                        format!(
                            "{} was locked by another process for more than {:?}",
                            path.display(),
                            self.lock_timeout
                        )
                        .into(),
                    ),
                })?;
                Ok(file)
            })
            .collect()
    }

    /// The whole file under `key`, if there is one in our format.
    fn read(&self, key: &StoreKey) -> Result<Option<(Header, Vec<u8>)>, StoreError> {
        let mut bytes = Vec::new();
        match File::open(self.file(key)) {
            Ok(mut file) => file.read_to_end(&mut bytes).map_err(io)?,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        Ok(Header::parse(&bytes).map(|header| {
            bytes.drain(..HEADER);
            (header, bytes)
        }))
    }

    /// Only the header under `key`.
    fn header(&self, key: &StoreKey) -> Result<Option<Header>, StoreError> {
        let mut bytes = [0; HEADER];
        match File::open(self.file(key)) {
            Ok(mut file) => match file.read_exact(&mut bytes) {
                Ok(()) => Ok(Header::parse(&bytes)),
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(None),
                Err(e) => Err(io(e)),
            },
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    /// Writes a complete record to a new temporary file in the directory (no lock held).
    fn write_temp(&self, header: Header, data: &[u8]) -> Result<TempFile, StoreError> {
        let path = self
            .path
            .join(format!("{TEMP}{:016x}", rand::random::<u64>()));
        let temp = TempFile(path);
        let mut file = private::options()
            .write(true)
            .create_new(true)
            .open(&temp.0)
            .map_err(io)?;
        let mut bytes = Vec::with_capacity(HEADER + data.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&header.version.to_be_bytes());
        bytes.extend_from_slice(&header.expires.to_be_bytes());
        bytes.extend_from_slice(data);
        file.write_all(&bytes).map_err(io)?;
        if self.sync {
            // On disk before it replaces the old record: a crash leaves one or the other.
            file.sync_data().map_err(io)?;
        }
        Ok(temp)
    }

    /// Moves `temp` to `key`'s file (atomically replacing it).
    fn install(&self, temp: TempFile, key: &StoreKey) -> Result<(), StoreError> {
        fs::rename(&temp.0, self.file(key)).map_err(io)?;
        std::mem::forget(temp);
        Ok(())
    }
}

/// A temporary file, removed if it is not installed.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

impl SessionStore for FileStore {
    fn load(
        &self,
        key: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send {
        let (key, now) = (*key, now.unix_timestamp());
        self.worker.run(move |dir| match dir.read(&key)? {
            Some((header, data)) if header.live(now) => Ok(Some(Record::new(
                data,
                datetime(header.expires)?,
                Version(header.version),
            ))),
            _ => Ok(None),
        })
    }

    fn create(
        &self,
        key: &StoreKey,
        data: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Version, StoreError>> + Send {
        let checked = check_size(data, self.max_record);
        let (key, data, expires, now) = (
            *key,
            data.to_vec(),
            expires.unix_timestamp(),
            now.unix_timestamp(),
        );
        let job = checked.map(|()| {
            self.worker.run(move |dir| {
                let header = Header {
                    version: Version::FIRST.0,
                    expires,
                };
                let temp = dir.write_temp(header, &data)?;
                let _lock = dir.lock(&[&key])?;
                if dir.header(&key)?.is_some_and(|h| h.live(now)) {
                    return Err(StoreError::Duplicate);
                }
                dir.install(temp, &key)?;
                Ok(Version::FIRST)
            })
        });
        async move { job?.await }
    }

    fn save(
        &self,
        key: &StoreKey,
        expected: Version,
        data: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Version, StoreError>> + Send {
        let checked = check_size(data, self.max_record);
        let (key, data, expires, now) = (
            *key,
            data.to_vec(),
            expires.unix_timestamp(),
            now.unix_timestamp(),
        );
        let job = checked.map(|()| {
            self.worker.run(move |dir| {
                let next = expected.next();
                let temp = dir.write_temp(
                    Header {
                        version: next.0,
                        expires,
                    },
                    &data,
                )?;
                let _lock = dir.lock(&[&key])?;
                match dir.header(&key)? {
                    Some(h) if h.live(now) && h.version == expected.0 => {
                        dir.install(temp, &key)?;
                        Ok(next)
                    }
                    Some(h) if h.live(now) => Err(StoreError::Conflict),
                    _ => Err(StoreError::Gone),
                }
            })
        });
        async move { job?.await }
    }

    fn touch(
        &self,
        key: &StoreKey,
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let (key, expires, now) = (*key, expires.unix_timestamp(), now.unix_timestamp());
        self.worker.run(move |dir| {
            let _lock = dir.lock(&[&key])?;
            match dir.read(&key)? {
                Some((h, _)) if h.live(now) && expires <= h.expires => Ok(()),
                Some((h, data)) if h.live(now) => {
                    // Rare (a renewal): rewritten under the lock, data and version kept.
                    let temp = dir.write_temp(
                        Header {
                            version: h.version,
                            expires,
                        },
                        &data,
                    )?;
                    dir.install(temp, &key)
                }
                _ => Err(StoreError::Gone),
            }
        })
    }

    fn rename(
        &self,
        from: &StoreKey,
        to: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let (from, to, now) = (*from, *to, now.unix_timestamp());
        self.worker.run(move |dir| {
            let _lock = dir.lock(&[&from, &to])?;
            if !dir.header(&from)?.is_some_and(|h| h.live(now)) {
                return Err(StoreError::Gone);
            }
            if from == to {
                return Ok(());
            }
            if dir.header(&to)?.is_some_and(|h| h.live(now)) {
                return Err(StoreError::Duplicate);
            }
            fs::rename(dir.file(&from), dir.file(&to)).map_err(io)
        })
    }

    fn delete(
        &self,
        key: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let (key, now) = (*key, now.unix_timestamp());
        self.worker.run(move |dir| {
            let _lock = dir.lock(&[&key])?;
            let live = dir.header(&key)?.is_some_and(|h| h.live(now));
            match fs::remove_file(dir.file(&key)) {
                Ok(()) => Ok(live),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
                Err(e) => Err(io(e)),
            }
        })
    }

    fn sweep(
        &self,
        now: OffsetDateTime,
        max: usize,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send {
        let now = now.unix_timestamp();
        self.worker.run(move |dir| {
            let mut removed = 0;
            for entry in fs::read_dir(&dir.path).map_err(io)? {
                if removed >= max {
                    break;
                }
                let entry = entry.map_err(io)?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if name.starts_with(TEMP) {
                    remove_abandoned(&entry.path());
                    continue;
                }
                let Some(key) = name
                    .strip_suffix(SUFFIX)
                    .filter(|hex| hex.len() == 64)
                    .and_then(StoreKey::from_hex)
                else {
                    continue;
                };
                let _lock = dir.lock(&[&key])?;
                // Checked again under the lock: a save may have renewed it meanwhile.
                if dir.header(&key)?.is_some_and(|h| !h.live(now)) {
                    match fs::remove_file(dir.file(&key)) {
                        Ok(()) => removed += 1,
                        Err(e) if e.kind() == ErrorKind::NotFound => {}
                        Err(e) => return Err(io(e)),
                    }
                }
            }
            Ok(removed)
        })
    }
}

/// Takes `file`'s exclusive lock, waiting at most `timeout` (`Err(None)` then).
fn lock_within(file: &File, timeout: Duration) -> Result<(), Option<std::io::Error>> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_micros(100);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(TryLockError::Error(e)) => return Err(Some(e)),
            Err(TryLockError::WouldBlock) => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(None);
        }
        // Locks are held around a rename only: most waits end within the first pauses.
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// A temporary file older than an hour was left by a crash: remove it.
fn remove_abandoned(path: &Path) {
    let old = fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age.as_secs() > 3600);
    if old {
        let _ = fs::remove_file(path);
    }
}
