//! A dedicated thread for a blocking backend: the async runtime's threads hand it work and
//! await the answer, and are never blocked by it (no runtime needed: the answer wakes
//! whatever executor polls the future).

use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use super::StoreError;

/// A job for the worker: runs with exclusive access to the worker's state `T`.
type Job<T> = Box<dyn FnOnce(&mut T) + Send>;

/// The handle to a worker thread that owns a `T` (a database connection).
pub(crate) struct Worker<T> {
    jobs: Mutex<mpsc::Sender<Job<T>>>,
}

impl<T> std::fmt::Debug for Worker<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").finish_non_exhaustive()
    }
}

impl<T: 'static> Worker<T> {
    /// Starts a thread named `name` that owns the value `open` makes there.
    pub(crate) fn start(
        name: &str,
        open: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
    ) -> Result<Self, StoreError> {
        let (jobs, queue) = mpsc::channel::<Job<T>>();
        let (ready, opened) = mpsc::channel();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let mut state = match open() {
                    Ok(state) => {
                        let _ = ready.send(Ok(()));
                        state
                    }
                    Err(error) => {
                        let _ = ready.send(Err(error));
                        return;
                    }
                };
                // Ends when every handle is dropped (the channel closes).
                // Looking for the next job before sleeping pays only where the worker has a
                // core to itself; sharing one, it would take time from the runtime.
                let spin = if std::thread::available_parallelism().is_ok_and(|n| n.get() > 1) {
                    SPIN
                } else {
                    std::time::Duration::ZERO
                };
                while let Some(job) = next(&queue, spin) {
                    job(&mut state);
                }
            })
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        opened
            .recv()
            .map_err(|e| StoreError::Unavailable(Box::new(e)))??;
        Ok(Self {
            jobs: Mutex::new(jobs),
        })
    }

    /// Runs `job` on the worker thread; the future resolves to its result.
    pub(crate) fn run<R: Send + 'static>(
        &self,
        job: impl FnOnce(&mut T) -> Result<R, StoreError> + Send + 'static,
    ) -> impl Future<Output = Result<R, StoreError>> + Send + 'static {
        let slot = Arc::new(Mutex::new(Slot::<Result<R, StoreError>>::default()));
        let answer = Answer(Some(Arc::clone(&slot)));
        let sent = self
            .jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(Box::new(move |state: &mut T| answer.give(job(state))));
        if sent.is_err() {
            // The thread is gone: the reply slot was dropped with the job, so it is closed.
            slot.lock().unwrap_or_else(PoisonError::into_inner).closed = true;
        }
        Reply(slot)
    }
}

/// How long the worker keeps looking for the next job before it sleeps, on a machine with
/// a core to spare: a request's next statement usually follows within microseconds, and
/// waking a sleeping thread costs more (an SQLite read-only request: 53 -> 19 µs, see
/// BENCHMARKS.md). At most this much CPU per job, and only while jobs keep coming.
const SPIN: std::time::Duration = std::time::Duration::from_micros(50);

/// The next job: taken at once if one is queued or arrives within `spin`, else waited
/// for. `None` once every handle is gone.
fn next<T>(queue: &mpsc::Receiver<T>, spin: std::time::Duration) -> Option<T> {
    let start = std::time::Instant::now();
    loop {
        match queue.try_recv() {
            Ok(job) => return Some(job),
            Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) if start.elapsed() < spin => std::hint::spin_loop(),
            Err(mpsc::TryRecvError::Empty) => return queue.recv().ok(),
        }
    }
}

struct Slot<R> {
    value: Option<R>,
    waker: Option<Waker>,
    closed: bool,
}

impl<R> Default for Slot<R> {
    fn default() -> Self {
        Self {
            value: None,
            waker: None,
            closed: false,
        }
    }
}

/// The worker's side: gives the answer, or (dropped unanswered, e.g. the job panicked)
/// closes the slot so that the future does not wait forever.
struct Answer<R>(Option<Arc<Mutex<Slot<R>>>>);

impl<R> Answer<R> {
    fn give(mut self, value: R) {
        if let Some(slot) = self.0.take() {
            let waker = {
                let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
                slot.value = Some(value);
                slot.waker.take()
            };
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }
}

impl<R> Drop for Answer<R> {
    fn drop(&mut self) {
        if let Some(slot) = self.0.take() {
            let waker = {
                let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
                slot.closed = true;
                slot.waker.take()
            };
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }
}

/// The caller's side.
struct Reply<R>(Arc<Mutex<Slot<Result<R, StoreError>>>>);

impl<R> Future for Reply<R> {
    type Output = Result<R, StoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(value) = slot.value.take() {
            return Poll::Ready(value);
        }
        if slot.closed {
            return Poll::Ready(Err(StoreError::Unavailable(
                "the store's worker thread has stopped".into(),
            )));
        }
        slot.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}
