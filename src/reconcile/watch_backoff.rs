//! The retry delay of every watch the operator runs (its own kinds, children, optional kinds, CRDs):
//! doubling from 250 ms up to 5 s. Pure: no client, no clock (kube-runtime's `StreamBackoff` sleeps).
//!
//! Why not kube-runtime's `default_backoff` (client-go's 0.8 s → 30 s, plus up to 100 % jitter): a
//! watch restart that succeeds yields no item when nothing changed, so the delay is never reset by a
//! healthy but quiet stream, and after a flaky period one controller's whole input stayed parked for
//! up to a minute once the API server was healthy again (measured in `tests/operator/soak.rs`). One
//! operator with about a dozen watches retrying at most every 5 s costs an unavailable API server at
//! most ~2.4 requests per second.

use std::time::Duration;

use kube::runtime::utils::Backoff;

/// First delay after a failed watch or list.
const FIRST: Duration = Duration::from_millis(250);
/// Longest delay between two attempts.
const LONGEST: Duration = Duration::from_secs(5);

/// Doubling delays from `FIRST` to `LONGEST`, back to `FIRST` after any event.
#[derive(Debug, Clone)]
pub struct WatchBackoff {
    next: Duration,
}

/// The backoff for one watch stream (`.backoff(watch_backoff())`).
pub fn watch_backoff() -> WatchBackoff {
    WatchBackoff { next: FIRST }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(LONGEST);
        Some(delay)
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_five_seconds_and_resets() {
        let mut backoff = watch_backoff();
        let delays: Vec<u128> = backoff.by_ref().take(7).map(|d| d.as_millis()).collect();
        assert_eq!(delays, [250, 500, 1000, 2000, 4000, 5000, 5000]);
        backoff.reset();
        assert_eq!(backoff.next(), Some(FIRST));
    }
}
