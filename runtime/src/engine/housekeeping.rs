//! Work no task waits for, on one thread of the lowest CPU priority.
//!
//! Removing a stopped task's files (its containers' writable layers on the data root's
//! disk, its bundles and state) cost about 1.6 ms of CPU per task here, ext4 unlinks for
//! the most part. It runs after the task is STOPPED, so no caller waits for it; but on a
//! small host it ran at the same priority as the next task's start, and took its CPU:
//! with back-to-back `berth run`s on two CPUs it made each start ~1.5 ms longer. At
//! nice 19 the scheduler gives it only the time that starting tasks leave over.
//!
//! Jobs run one after another, in the order given. Only file removal belongs here: a
//! job must not take a lock that a task's start needs (the network's rtnl, the cgroup
//! mutex), or that start would wait on this thread's low priority. A daemon that stops
//! with jobs queued drops them; its successor's start-up sweep removes what they would
//! have.

use std::sync::Mutex;
use std::sync::mpsc::{Sender, channel};

type Job = Box<dyn FnOnce() + Send>;

/// The housekeeping thread's queue.
#[derive(Debug)]
pub(crate) struct Housekeeper {
    jobs: Mutex<Option<Sender<Job>>>,
}

impl Housekeeper {
    /// Starts the thread. If it cannot start, jobs run on tokio's blocking pool
    /// instead, at normal priority.
    pub(crate) fn start() -> Housekeeper {
        let (tx, rx) = channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("berth-cleanup".into())
            .spawn(move || {
                if let Err(e) = super::sys::lower_this_threads_priority() {
                    tracing::debug!(error = %e, "housekeeping runs at normal priority");
                }
                while let Ok(job) = rx.recv() {
                    job();
                }
            });
        let jobs = match spawned {
            Ok(_) => Some(tx),
            Err(e) => {
                tracing::debug!(error = %e, "no housekeeping thread");
                None
            }
        };
        Housekeeper {
            jobs: Mutex::new(jobs),
        }
    }

    /// Queues `job`. Never blocks.
    pub(crate) fn run(&self, job: impl FnOnce() + Send + 'static) {
        let job: Job = Box::new(job);
        let refused = match self.jobs.lock().expect("not poisoned").as_ref() {
            Some(tx) => tx.send(job).err().map(|e| e.0),
            None => Some(job),
        };
        if let Some(job) = refused {
            tokio::task::spawn_blocking(job);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_in_order_on_a_thread_of_lower_priority() {
        let keeper = Housekeeper::start();
        let (tx, rx) = channel();
        for i in 0..3 {
            let tx = tx.clone();
            keeper.run(move || {
                let nice = crate::engine::sys::this_threads_nice();
                tx.send((i, nice)).expect("receiver alive");
            });
        }
        let got: Vec<(i32, i32)> = (0..3).map(|_| rx.recv().expect("job ran")).collect();
        assert_eq!(
            got.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        // Raising the nice value needs no privilege: every test run can check it.
        assert!(got.iter().all(|(_, nice)| *nice == 19), "{got:?}");
    }
}
