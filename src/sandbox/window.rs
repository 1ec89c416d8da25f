//! Requests per one-second window, lock-free: one atomic word holds the current second and
//! its count, so the hot path is a single compare-and-swap. Used for the throttle fault
//! and for the stats' busiest second.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct SecondCounter {
    /// High 32 bits: the second (since start); low 32 bits: requests counted in it.
    state: AtomicU64,
    /// The largest count of any second already closed.
    max_closed: AtomicU64,
}

fn unpack(v: u64) -> (u32, u32) {
    ((v >> 32) as u32, v as u32)
}

fn pack(second: u32, count: u32) -> u64 {
    (u64::from(second) << 32) | u64::from(count)
}

impl SecondCounter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one request in `second` and returns how many that second has seen so far.
    /// A request stamped with an earlier second than the current one (a thread that read
    /// the clock just before the turn) counts in the current second.
    pub fn hit(&self, second: u32) -> u32 {
        let mut current = self.state.load(Ordering::Relaxed);
        loop {
            let (sec, n) = unpack(current);
            let (next, closed) = if second > sec {
                (pack(second, 1), Some(n))
            } else {
                (pack(sec, n.saturating_add(1)), None)
            };
            match self.state.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    if let Some(n) = closed {
                        self.max_closed.fetch_max(u64::from(n), Ordering::Relaxed);
                    }
                    return unpack(next).1;
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// The largest count seen in any one second, the current one included.
    pub fn max(&self) -> u64 {
        let (_, n) = unpack(self.state.load(Ordering::Relaxed));
        self.max_closed.load(Ordering::Relaxed).max(u64::from(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_second_and_keeps_the_busiest() {
        let c = SecondCounter::new();
        assert_eq!(c.hit(0), 1);
        assert_eq!(c.hit(0), 2);
        assert_eq!(c.hit(0), 3);
        assert_eq!(c.hit(1), 1);
        assert_eq!(c.hit(0), 2, "a late request counts in the current second");
        assert_eq!(c.max(), 3);
        for _ in 0..5 {
            c.hit(7);
        }
        assert_eq!(c.max(), 5);
    }

    #[test]
    fn concurrent_hits_are_all_counted() {
        let c = std::sync::Arc::new(SecondCounter::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.hit(3);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.max(), 4000);
    }
}
