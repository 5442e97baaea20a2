//! The warehouse's recent answers, kept for a short while.
//!
//! On Snowflake every dashboard view is a query in the warehouse (a second
//! or more, and credits). Analysts go back and forward through views (the
//! view lives in the URL), several people open the default one, and a page
//! asks for the figures, the two leaderboards and the first drill-down
//! page of one view at once. [`Recent`] keeps the last [`CAPACITY`] answers
//! of one kind for [`TTL`], keyed by everything the answer depends on (the
//! view's filters and periods, the leaderboard or page asked); the data
//! snapshot and the segment model are fixed for a [`super::Warehouse`],
//! which is rebuilt, with empty caches, when either changes. Only answers
//! are kept, never errors, and never the exports' full tables (they can
//! hold every customer).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Answers of one kind kept at most.
pub const CAPACITY: usize = 64;

/// How long an answer is kept: the warehouse's tables may change between
/// two snapshots of the service, so an answer is not kept for long.
pub const TTL: Duration = Duration::from_secs(60);

/// The last answers of one kind, least recently used first.
pub struct Recent<T> {
    entries: Mutex<VecDeque<Entry<T>>>,
}

struct Entry<T> {
    key: String,
    at: Instant,
    value: T,
}

impl<T> Default for Recent<T> {
    fn default() -> Self {
        Recent {
            entries: Mutex::new(VecDeque::with_capacity(CAPACITY)),
        }
    }
}

impl<T: Clone> Recent<T> {
    /// The answer kept for `key` if it is younger than [`TTL`]; otherwise
    /// `ask`'s, kept when it is one (an error is passed on, not kept).
    /// Two requests for the same missing key may both ask.
    pub fn get_or_ask(
        &self,
        key: String,
        ask: impl FnOnce() -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        if let Some(v) = self.get(&key, Instant::now()) {
            return Ok(v);
        }
        let value = ask()?;
        self.put(key, value.clone(), Instant::now());
        Ok(value)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Entry<T>>> {
        // A panic while holding the lock leaves whole entries behind.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, key: &str, now: Instant) -> Option<T> {
        let mut entries = self.lock();
        entries.retain(|e| now.saturating_duration_since(e.at) < TTL);
        let pos = entries.iter().position(|e| e.key == key)?;
        let entry = entries.remove(pos)?;
        let value = entry.value.clone();
        entries.push_back(entry);
        Some(value)
    }

    fn put(&self, key: String, value: T, now: Instant) {
        let mut entries = self.lock();
        entries.retain(|e| e.key != key);
        while entries.len() >= CAPACITY {
            entries.pop_front();
        }
        entries.push_back(Entry {
            key,
            at: now,
            value,
        });
    }

    /// Answers kept now (expired ones included until the next lookup).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_answers_not_errors_and_forgets_the_oldest_and_the_expired() {
        let r = Recent::<u32>::default();
        let mut asked = 0;
        let mut ask = |v: u32| {
            asked += 1;
            move || Ok(v)
        };
        assert_eq!(r.get_or_ask("a".into(), ask(1)).expect("an answer"), 1);
        assert_eq!(
            r.get_or_ask("a".into(), ask(2)).expect("an answer"),
            1,
            "kept"
        );
        let failed = r.get_or_ask("b".into(), || Err(anyhow::anyhow!("down")));
        assert!(failed.is_err());
        assert_eq!(
            r.get_or_ask("b".into(), ask(3)).expect("an answer"),
            3,
            "errors are not kept"
        );
        assert_eq!(asked, 3);

        // Full: the least recently used goes ("a" was used after "b").
        let t0 = Instant::now();
        r.get("a", t0).expect("a");
        for i in 0..CAPACITY - 1 {
            r.put(format!("k{i}"), 100, t0);
        }
        assert_eq!(r.len(), CAPACITY);
        assert!(r.get("b", t0).is_none(), "the least recently used is gone");
        assert_eq!(r.get("a", t0), Some(1));

        // Expired: gone at the next lookup.
        let later = t0 + TTL + Duration::from_millis(1);
        assert!(r.get("a", later).is_none());
        assert_eq!(r.len(), 0, "every entry was older than the TTL");
    }
}
