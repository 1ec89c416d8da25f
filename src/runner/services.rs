//! The id types a submit run validates its rows against: `GET /v1/services` asked once at
//! the start (with a short timeout), its answer kept in the database with its time; when
//! the host does not answer usably, the newest answer kept for that host; else the
//! built-in table. Each is merged with the built-in regexes ([`IdTypes::from_services`]).

use std::time::Duration;

use serde_json::Value;

use crate::api::SmileClient;
use crate::api::id_types::{IdTypes, UnknownIdTypes};
use crate::store::{Store, now_ms};

/// How long the start of a run waits for `/v1/services`.
pub const SERVICES_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a run's id types came from (logged, and read by tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The host answered now.
    Fresh,
    /// The host did not; an answer kept from this many milliseconds ago was used.
    Stored { age_ms: i64 },
    /// Neither: the built-in table.
    BuiltIn,
}

/// The run's id types and where they came from ([`fetch`], then [`resolve`]).
pub async fn id_types(
    store: &Store,
    client: &SmileClient,
    unknown: UnknownIdTypes,
) -> (IdTypes, Source) {
    let fetched = fetch(client).await;
    resolve(store, client.base_url(), fetched, unknown)
}

/// Asks `/v1/services` (within [`SERVICES_TIMEOUT`]). Holds no database handle across the
/// wait, so that a run's future stays `Send`.
pub async fn fetch(client: &SmileClient) -> Result<Value, String> {
    match tokio::time::timeout(SERVICES_TIMEOUT, client.services()).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", SERVICES_TIMEOUT.as_secs())),
    }
}

/// The id types from `fetched` (kept in the store when usable), else from the newest
/// answer kept for `base`, else the built-in table.
pub fn resolve(
    store: &Store,
    base: &str,
    fetched: Result<Value, String>,
    unknown: UnknownIdTypes,
) -> (IdTypes, Source) {
    let failure = match fetched {
        Ok(body) => match IdTypes::from_services(&body) {
            Ok(types) => {
                if let Err(e) = store.save_services(base, now_ms(), &body.to_string()) {
                    tracing::warn!(error = %e, "cannot keep the /v1/services answer");
                }
                warn_bad_regexes(&types);
                tracing::info!(
                    id_types = types.len(),
                    host = %base,
                    "id types from /v1/services"
                );
                return (types.with_unknown(unknown), Source::Fresh);
            }
            Err(e) => e.to_string(),
        },
        Err(e) => e,
    };
    match store.latest_services(base) {
        Ok(Some(stored)) => {
            let parsed = serde_json::from_str(&stored.body)
                .map_err(|e| e.to_string())
                .and_then(|v| IdTypes::from_services(&v).map_err(|e| e.to_string()));
            match parsed {
                Ok(types) => {
                    let age_ms = now_ms().saturating_sub(stored.fetched_at).max(0);
                    warn_bad_regexes(&types);
                    tracing::warn!(
                        error = %failure,
                        age = %human_age(age_ms),
                        id_types = types.len(),
                        "GET /v1/services failed; using the answer stored for {base}"
                    );
                    return (types.with_unknown(unknown), Source::Stored { age_ms });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the stored /v1/services answer is unreadable")
                }
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the stored /v1/services answers"),
    }
    tracing::warn!(
        error = %failure,
        "GET /v1/services failed and no answer is stored for {base}; using the built-in id \
         type table"
    );
    (IdTypes::builtin().with_unknown(unknown), Source::BuiltIn)
}

fn warn_bad_regexes(types: &IdTypes) {
    if !types.bad_regexes.is_empty() {
        tracing::warn!(
            types = %types.bad_regexes.join(", "),
            "/v1/services gave regexes that do not compile; the built-in ones (or none) are used"
        );
    }
}

fn human_age(ms: i64) -> String {
    let s = ms / 1000;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_people_say_them() {
        assert_eq!(human_age(5_000), "5 s");
        assert_eq!(human_age(600_000), "10 min");
        assert_eq!(human_age(3 * 3_600_000), "3 h");
        assert_eq!(human_age(3 * 86_400_000), "3 days");
    }
}
