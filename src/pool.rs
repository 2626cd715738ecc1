//! pool: the bounded render pool, dedicated OS threads fed by a bounded two-priority queue.
//!
//! It owns admission (a full queue refuses at once), ordering (user jobs before background
//! ones), deadlines for queued jobs and panic isolation. It knows nothing of what a job does,
//! of caches or of HTTP (the server maps [`PoolError::Overloaded`] to 503 with Retry-After).
//!
//! Capacity: at most `threads + queue` user jobs are in the pool (running or waiting), and a
//! background job is refused once `threads + queue / 2` are, so warm-up never crowds out users.
//! A job still queued when its deadline passes is withdrawn unrun; a running job is never
//! interrupted (jobs check their own deadline between steps). On shutdown, queued jobs are
//! refused and running ones finish.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// Default `RENDER_QUEUE`.
pub const DEFAULT_QUEUE: usize = 64;

/// Default `RENDER_THREADS`: the machine's cores.
pub fn default_threads() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

/// Who is waiting for a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// A request: always served before background work.
    User,
    /// Warm-up and precaching: refused early, run last.
    Background,
}

/// Why a job gave no result.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The queue is full: try again later (HTTP 503 with Retry-After).
    #[error("the render queue is full")]
    Overloaded,
    /// The job's deadline passed while it waited; it was not run.
    #[error("the render waited past its deadline")]
    DeadlineExceeded,
    /// The pool is shutting down and takes no more jobs.
    #[error("the render pool is shutting down")]
    ShuttingDown,
    /// The job panicked (logged); the pool carries on.
    #[error("the render failed unexpectedly")]
    Panicked,
}

/// Counters for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Jobs waiting now.
    pub queued: u64,
    /// Jobs running now.
    pub running: u64,
    /// Jobs that ran to the end (panics excluded).
    pub completed: u64,
    /// Jobs refused because the queue was full.
    pub rejected: u64,
    /// Jobs dropped unrun because their deadline passed while queued.
    pub deadline_exceeded: u64,
    /// Jobs that panicked.
    pub panicked: u64,
}

/// The render pool: cheap to clone, shared by all requests.
#[derive(Clone)]
pub struct RenderPool {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    ready: Condvar,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Most jobs in the pool (running or queued) for user and for background jobs.
    user_limit: usize,
    background_limit: usize,
}

#[derive(Default)]
struct State {
    user: VecDeque<Job>,
    background: VecDeque<Job>,
    next_id: u64,
    shutting_down: bool,
    stats: PoolStats,
}

/// A queued job, type-erased: told whether to run, it runs (or not) and gives back how it
/// ended and its answer for the caller.
struct Job {
    id: u64,
    deadline: Instant,
    task: Task,
}

type Task = Box<dyn FnOnce(Verdict) -> Outcome + Send>;

/// How a job ended, and its answer, sent only once the counters say so (a caller that has its
/// answer sees stats that include it).
struct Outcome {
    ended: Ended,
    answer: Box<dyn FnOnce() + Send>,
}

impl Outcome {
    fn deliver(self) {
        (self.answer)();
    }
}

/// What the pool decided for a job.
enum Verdict {
    Run,
    Refuse(PoolError),
}

/// How a job ended, for the counters.
enum Ended {
    Completed,
    Panicked,
    Refused,
}

impl RenderPool {
    /// Starts `threads` workers (at least one) behind a queue of `queue` waiting jobs.
    pub fn new(threads: usize, queue: usize) -> RenderPool {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            ready: Condvar::new(),
            threads: Mutex::new(Vec::new()),
            user_limit: threads + queue,
            background_limit: threads + queue / 2,
        });
        let handles = (0..threads)
            .filter_map(|i| spawn_worker(i, &shared))
            .collect();
        *lock(&shared.threads) = handles;
        RenderPool { shared }
    }

    /// Runs `job` on one of the pool's dedicated OS threads (never on the async runtime),
    /// waiting in a bounded queue. User jobs always go before Background ones. A full queue
    /// answers `Overloaded` at once. A job still queued when `deadline` (from now) passes is
    /// dropped unrun: `DeadlineExceeded`. A job that panics gives `Panicked` and the worker
    /// survives. Dropping the returned future does not withdraw a queued job.
    pub async fn run<T: Send + 'static>(
        &self,
        priority: Priority,
        deadline: Duration,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let deadline = deadline_from_now(deadline);
        let (tx, mut rx) = oneshot::channel();
        let id = self
            .shared
            .enqueue(priority, deadline, answer_with(tx, job))?;
        tokio::select! {
            answer = &mut rx => return flatten(answer),
            () = tokio::time::sleep_until(deadline.into()) => {}
        }
        if self.shared.withdraw(id) {
            return Err(PoolError::DeadlineExceeded);
        }
        flatten(rx.await)
    }

    /// The counters now.
    pub fn stats(&self) -> PoolStats {
        self.shared.lock().stats
    }

    /// Stops taking jobs (`ShuttingDown`, also for those still queued), lets running ones
    /// finish and joins the threads. Blocks until then: from async code, call it in
    /// `spawn_blocking`. Calling it again does nothing.
    pub fn shutdown(&self) {
        let refused = {
            let mut state = self.shared.lock();
            state.shutting_down = true;
            let mut queued: Vec<Job> = state.user.drain(..).collect();
            queued.extend(state.background.drain(..));
            state.stats.queued = 0;
            queued
        };
        self.shared.ready.notify_all();
        for job in refused {
            (job.task)(Verdict::Refuse(PoolError::ShuttingDown)).deliver();
        }
        let handles = std::mem::take(&mut *lock(&self.shared.threads));
        for handle in handles {
            if handle.thread().id() != thread::current().id() && handle.join().is_err() {
                tracing::error!("a render thread ended by a panic");
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Queues a job, or refuses it at once.
    fn enqueue(&self, priority: Priority, deadline: Instant, task: Task) -> Result<u64, PoolError> {
        let mut state = self.lock();
        if state.shutting_down {
            return Err(PoolError::ShuttingDown);
        }
        let limit = match priority {
            Priority::User => self.user_limit,
            Priority::Background => self.background_limit,
        };
        if state.stats.queued + state.stats.running >= limit as u64 {
            state.stats.rejected += 1;
            return Err(PoolError::Overloaded);
        }
        state.next_id += 1;
        let id = state.next_id;
        let job = Job { id, deadline, task };
        match priority {
            Priority::User => state.user.push_back(job),
            Priority::Background => state.background.push_back(job),
        }
        state.stats.queued += 1;
        drop(state);
        self.ready.notify_one();
        Ok(id)
    }

    /// Takes job `id` out of the queue, answering `DeadlineExceeded`; false when a worker
    /// already took it.
    fn withdraw(&self, id: u64) -> bool {
        let mut state = self.lock();
        let Some(job) = state.take(id) else {
            return false;
        };
        state.stats.deadline_exceeded += 1;
        drop(state);
        (job.task)(Verdict::Refuse(PoolError::DeadlineExceeded)).deliver();
        true
    }

    /// The next job to run, marked running; `None` once the pool shuts down. Jobs found past
    /// their deadline are answered and skipped.
    fn next_job(&self) -> Option<Job> {
        let mut state = self.lock();
        loop {
            if state.shutting_down {
                return None;
            }
            match state.pop() {
                Some(job) if job.deadline <= Instant::now() => {
                    state.stats.deadline_exceeded += 1;
                    (job.task)(Verdict::Refuse(PoolError::DeadlineExceeded)).deliver();
                }
                Some(job) => {
                    state.stats.running += 1;
                    return Some(job);
                }
                None => {
                    state = self
                        .ready
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner)
                }
            }
        }
    }

    fn finished(&self, ended: &Ended) {
        let mut state = self.lock();
        state.stats.running -= 1;
        match ended {
            Ended::Completed => state.stats.completed += 1,
            Ended::Panicked => state.stats.panicked += 1,
            Ended::Refused => {}
        }
    }
}

impl State {
    /// The next queued job: users first, each queue in order.
    fn pop(&mut self) -> Option<Job> {
        let job = self
            .user
            .pop_front()
            .or_else(|| self.background.pop_front())?;
        self.stats.queued -= 1;
        Some(job)
    }

    /// Removes queued job `id`, wherever it is.
    fn take(&mut self, id: u64) -> Option<Job> {
        let job = [&mut self.user, &mut self.background]
            .into_iter()
            .find_map(|queue| {
                let at = queue.iter().position(|job| job.id == id)?;
                queue.remove(at)
            })?;
        self.stats.queued -= 1;
        Some(job)
    }
}

fn spawn_worker(i: usize, shared: &Arc<Shared>) -> Option<JoinHandle<()>> {
    let shared = Arc::clone(shared);
    let spawned = thread::Builder::new()
        .name(format!("gigatile-render-{i}"))
        .spawn(move || {
            while let Some(job) = shared.next_job() {
                let outcome = (job.task)(Verdict::Run);
                shared.finished(&outcome.ended);
                outcome.deliver();
            }
        });
    spawned
        .map_err(|err| tracing::error!(%err, "cannot start a render thread"))
        .ok()
}

/// Wraps `job` so that it runs under `catch_unwind` (or is refused), its result ready to be
/// sent to its caller.
fn answer_with<T: Send + 'static>(
    tx: oneshot::Sender<Result<T, PoolError>>,
    job: impl FnOnce() -> T + Send + 'static,
) -> Task {
    Box::new(move |verdict| {
        let (answer, ended) = match verdict {
            Verdict::Run => match catch_unwind(AssertUnwindSafe(job)) {
                Ok(value) => (Ok(value), Ended::Completed),
                Err(payload) => {
                    tracing::error!(panic = panic_message(&*payload), "a render job panicked");
                    (Err(PoolError::Panicked), Ended::Panicked)
                }
            },
            Verdict::Refuse(err) => (Err(err), Ended::Refused),
        };
        Outcome {
            ended,
            // The caller may be gone (a dropped request); the answer then goes nowhere.
            answer: Box::new(move || {
                let _ = tx.send(answer);
            }),
        }
    })
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// The instant `after` from now; a span too long to represent means a year.
fn deadline_from_now(after: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(after)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 86_400))
}

/// A job dropped without an answer can only be one the pool abandoned while shutting down.
fn flatten<T>(
    answer: Result<Result<T, PoolError>, oneshot::error::RecvError>,
) -> Result<T, PoolError> {
    answer.unwrap_or(Err(PoolError::ShuttingDown))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn background_jobs_are_refused_at_half_the_queue() {
        let pool = RenderPool::new(1, 4);
        assert_eq!(
            (pool.shared.user_limit, pool.shared.background_limit),
            (5, 3)
        );
        pool.shutdown();
    }

    #[tokio::test]
    async fn an_endless_deadline_is_not_an_overflow() {
        let pool = RenderPool::new(1, 1);
        let answer = pool.run(Priority::User, Duration::MAX, || 5).await;
        assert!(matches!(answer, Ok(5)));
        pool.shutdown();
    }

    #[test]
    fn panic_messages_are_read_from_both_payload_kinds() {
        assert_eq!(panic_message(&"static"), "static");
        assert_eq!(panic_message(&String::from("owned")), "owned");
        assert_eq!(panic_message(&3u8), "(no message)");
    }
}
