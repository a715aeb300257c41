//! The database thread: one thread owns the [`Db`]; everything else sends it jobs.
//!
//! SQLite connections are not `Sync`, and a query must never block a tokio worker.
//! [`DbHandle`] is a cheap, cloneable sender; [`DbHandle::call`] runs a closure on the
//! database thread and awaits its result. Jobs run one at a time, in order, which also
//! makes every job a critical section: a read-modify-write inside one closure cannot
//! interleave with another.

use std::sync::mpsc;
use std::thread;

use super::Db;

type Job = Box<dyn FnOnce(&mut Db) + Send>;

/// A handle to the database thread.
#[derive(Debug, Clone)]
pub struct DbHandle {
    jobs: mpsc::Sender<Job>,
}

impl DbHandle {
    /// Moves `db` onto a new thread named `berth-db` and returns a handle to it. The
    /// thread ends when the last handle is dropped.
    pub fn spawn(mut db: Db) -> DbHandle {
        let (jobs, rx) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("berth-db".into())
            .spawn(move || {
                for job in rx {
                    job(&mut db);
                }
            })
            .expect("spawning the database thread");
        DbHandle { jobs }
    }

    /// Runs `f` on the database thread and returns its result.
    pub async fn call<R, F>(&self, f: F) -> R
    where
        R: Send + 'static,
        F: FnOnce(&mut Db) -> R + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |db| {
                let _ = tx.send(f(db));
            }))
            .expect("the database thread outlives its handles");
        rx.await.expect("the database thread panicked")
    }

    /// Runs `f` on the database thread, blocking the caller (not for async contexts).
    pub fn call_blocking<R, F>(&self, f: F) -> R
    where
        R: Send + 'static,
        F: FnOnce(&mut Db) -> R + Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        self.jobs
            .send(Box::new(move |db| {
                let _ = tx.send(f(db));
            }))
            .expect("the database thread outlives its handles");
        rx.recv().expect("the database thread panicked")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_in_order_on_the_database_thread() {
        let h = DbHandle::spawn(Db::open_in_memory().unwrap());
        h.call(|db| {
            db.conn()
                .execute_batch("CREATE TABLE t (n INTEGER)")
                .unwrap()
        })
        .await;
        for i in 0..10 {
            let h = h.clone();
            h.call(move |db| db.conn().execute("INSERT INTO t VALUES (?1)", [i]).unwrap())
                .await;
        }
        let sum: i64 = h
            .call(|db| {
                db.conn()
                    .query_row("SELECT sum(n) FROM t", [], |r| r.get(0))
                    .unwrap()
            })
            .await;
        assert_eq!(sum, 45);
        let name = h.call_blocking(|_| thread::current().name().map(str::to_owned));
        assert_eq!(name.as_deref(), Some("berth-db"));
    }
}
