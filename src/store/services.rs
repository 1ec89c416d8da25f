//! The answers of `GET /v1/services`, kept per host with the time they were fetched, so
//! that a run that cannot reach the host validates against the last known id types.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};

/// Answers kept per host (older ones are deleted when a new one is saved).
const KEEP_PER_HOST: i64 = 5;

/// One stored answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredServices {
    /// Unix milliseconds.
    pub fetched_at: i64,
    pub body: String,
}

impl Store {
    /// Keeps an answer of `base_url`'s `/v1/services`.
    pub fn save_services(
        &self,
        base_url: &str,
        fetched_at: i64,
        body: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO services_cache (base_url, fetched_at, body) VALUES (?1, ?2, ?3)",
                params![base_url, fetched_at, body],
            )
            .map_err(|e| self.err(e))?;
        self.conn
            .execute(
                "DELETE FROM services_cache WHERE base_url = ?1 AND id NOT IN \
                 (SELECT id FROM services_cache WHERE base_url = ?1 \
                  ORDER BY fetched_at DESC, id DESC LIMIT ?2)",
                params![base_url, KEEP_PER_HOST],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The newest answer kept for `base_url`.
    pub fn latest_services(&self, base_url: &str) -> Result<Option<StoredServices>, StoreError> {
        self.conn
            .query_row(
                "SELECT fetched_at, body FROM services_cache WHERE base_url = ?1 \
                 ORDER BY fetched_at DESC, id DESC LIMIT 1",
                params![base_url],
                |r| {
                    Ok(StoredServices {
                        fetched_at: r.get(0)?,
                        body: r.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_answer_per_host_is_returned_and_old_ones_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        assert_eq!(store.latest_services("http://a").unwrap(), None);
        for t in 1..=8 {
            store
                .save_services("http://a", t, &format!("{{\"n\":{t}}}"))
                .unwrap();
        }
        store.save_services("http://b", 3, "{}").unwrap();
        let a = store.latest_services("http://a").unwrap().unwrap();
        assert_eq!((a.fetched_at, a.body.as_str()), (8, "{\"n\":8}"));
        assert_eq!(
            store
                .latest_services("http://b")
                .unwrap()
                .unwrap()
                .fetched_at,
            3
        );
        let kept: i64 = store
            .conn
            .query_row(
                "SELECT COUNT(*) FROM services_cache WHERE base_url = 'http://a'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(kept, KEEP_PER_HOST);
    }
}
