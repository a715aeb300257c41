//! A few netlink sockets kept open for reuse.

use std::sync::{Mutex, PoisonError};

/// Host-side netlink sockets kept open between calls. Besides saving the open, this matters
/// for nf_tables: closing its socket right after elements were deleted waits for the kernel's
/// deferred destroy work, an RCU grace period (about 10 ms here); an open socket never waits.
#[derive(Debug)]
pub(crate) struct Pool<T> {
    idle: Mutex<Vec<T>>,
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Pool {
            idle: Mutex::new(Vec::new()),
        }
    }
}

/// A socket taken from a [`Pool`], given back when dropped.
#[derive(Debug)]
pub(crate) struct Pooled<'a, T> {
    pool: &'a Pool<T>,
    item: Option<T>,
}

impl<T> Pool<T> {
    /// An idle socket, or a new one from `open` (on the calling thread, so in its namespace).
    pub(crate) fn get<E>(&self, open: impl FnOnce() -> Result<T, E>) -> Result<Pooled<'_, T>, E> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let item = match idle {
            Some(i) => i,
            None => open()?,
        };
        Ok(Pooled {
            pool: self,
            item: Some(item),
        })
    }
}

impl<T> std::ops::Deref for Pooled<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.item.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl<T> std::ops::DerefMut for Pooled<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.item.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl<T> Drop for Pooled<'_, T> {
    fn drop(&mut self) {
        if let Some(i) = self.item.take() {
            let mut idle = self
                .pool
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // a few are enough for the setups that run at the same time
            if idle.len() < 4 {
                idle.push(i);
            }
        }
    }
}
