//! A small fixed pool of threads for proof reads that must touch the disk.
//!
//! Tokio's blocking pool keeps every thread it ever started (up to 512) and wakes an idle one for each task, so
//! with many clients each read costs a thread wake-up and a context switch on top of the one back to the async
//! worker. Here a few threads take reads from one queue and only sleep when it is empty: under load they go from
//! one read to the next without being woken.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// Default number of read threads. Reads that miss RocksDB's block cache are `pread`s of one tile, from the page
/// cache or, after a restart or on a log larger than memory, from the disk: enough threads for the disk to have
/// several reads in flight, few enough that they rarely all sleep (BENCHMARKS.md, issue 20 second round).
pub const DEFAULT_READ_THREADS: usize = 8;

type Job = Box<dyn FnOnce() + Send>;

/// Handle to the read threads; cheap to clone. The threads end when the last handle is dropped.
#[derive(Clone)]
pub struct ReadPool {
    jobs: mpsc::Sender<Job>,
}

impl ReadPool {
    /// Starts `threads` read threads (at least one).
    pub fn new(threads: usize) -> Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads.max(1) {
            let queue = queue.clone();
            thread::Builder::new()
                .name(format!("tlog-read-{n}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for a job, not while running it.
                        let job = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        match job {
                            // A panicking read fails its own request (its answer channel is dropped), not the
                            // thread.
                            Ok(job) => drop(catch_unwind(AssertUnwindSafe(job))),
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|source| Error::Io {
                    context: "starting a read thread".into(),
                    source,
                })?;
        }
        Ok(ReadPool { jobs })
    }

    /// Runs `work` on a read thread and waits for its answer.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (answer, answered) = oneshot::channel();
        self.jobs
            .send(Box::new(move || drop(answer.send(work()))))
            .map_err(|_| Error::Closed)?;
        answered.await.map_err(|_| Error::ReadFailed)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_each_read() {
        let pool = ReadPool::new(2).unwrap();
        let tasks: Vec<_> = (0..64u64)
            .map(|n| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.run(move || Ok(n * 2)).await.unwrap() })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        assert_eq!(answers, (0..64u64).map(|n| n * 2).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_panicking_read_fails_alone() {
        let pool = ReadPool::new(1).unwrap();
        let failed = pool.run(|| -> Result<()> { panic!("read") }).await;
        assert!(matches!(failed, Err(Error::ReadFailed)));
        assert_eq!(pool.run(|| Ok(7)).await.unwrap(), 7);
    }
}
