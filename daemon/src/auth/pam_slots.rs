//! How many PAM checks may run: at most `max_concurrent` at once, at most
//! `max_per_peer` per socket peer uid.
//!
//! Invariant: one [`PamSlots`] lives as long as the daemon, across reloads
//! and PAM being turned off and on, so a check still running — a hung
//! module keeps its thread until libpam returns — counts against the limits
//! in force after a reload; a smaller limit takes effect as running checks
//! end, never by cutting them off.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The slots every PAM authenticator of this daemon shares.
#[derive(Debug, Clone)]
pub struct PamSlots {
    global: Arc<Semaphore>,
    /// Permits the semaphore is meant to hold (some may be out).
    size: Arc<Mutex<usize>>,
    per_peer: Arc<Mutex<HashMap<u32, usize>>>,
}

/// A peer's share of the checks; given back when its check ends.
#[derive(Debug)]
pub struct PeerSlot {
    uid: u32,
    running: Arc<Mutex<HashMap<u32, usize>>>,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = running.get_mut(&self.uid) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                running.remove(&self.uid);
            }
        }
    }
}

impl Default for PamSlots {
    /// No slot until [`PamSlots::resize`].
    fn default() -> Self {
        Self {
            global: Arc::new(Semaphore::new(0)),
            size: Arc::default(),
            per_peer: Arc::default(),
        }
    }
}

impl PamSlots {
    /// Sets the number of checks that may run at once to `wanted`.
    pub fn resize(&self, wanted: usize) {
        let mut size = self.size.lock().unwrap_or_else(PoisonError::into_inner);
        if wanted > *size {
            self.global.add_permits(wanted - *size);
        } else if wanted < *size {
            let surplus = u32::try_from(*size - wanted).unwrap_or(u32::MAX);
            let global = Arc::clone(&self.global);
            // Taken out of circulation as running checks give them back.
            match Arc::clone(&global).try_acquire_many_owned(surplus) {
                Ok(permits) => permits.forget(),
                Err(_) => match tokio::runtime::Handle::try_current() {
                    Ok(runtime) => {
                        runtime.spawn(async move {
                            if let Ok(permits) = global.acquire_many_owned(surplus).await {
                                permits.forget();
                            }
                        });
                    }
                    Err(_) => tracing::warn!("PAM limit lowered outside the runtime: not applied"),
                },
            }
        }
        *size = wanted;
    }

    /// A share for peer `uid` if it has fewer than `max_per_peer` running.
    pub fn peer(&self, uid: u32, max_per_peer: usize) -> Option<PeerSlot> {
        let mut running = self.per_peer.lock().unwrap_or_else(PoisonError::into_inner);
        let count = running.entry(uid).or_insert(0);
        if *count >= max_per_peer {
            return None;
        }
        *count += 1;
        Some(PeerSlot {
            uid,
            running: Arc::clone(&self.per_peer),
        })
    }

    /// One of the global slots, if one is free.
    pub fn global(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.global).try_acquire_owned().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lower_limit_waits_for_running_checks_to_end() {
        let slots = PamSlots::default();
        slots.resize(2);
        let first = slots.global().unwrap();
        let second = slots.global().unwrap();
        slots.resize(1);
        drop(first);
        drop(second);
        tokio::task::yield_now().await;
        let only = slots.global();
        assert!(only.is_some());
        assert!(
            slots.global().is_none(),
            "one slot after the limit fell to 1"
        );
        drop(only);
        slots.resize(3);
        let held: Vec<_> = (0..3).filter_map(|_| slots.global()).collect();
        assert_eq!(held.len(), 3);
    }
}
