//! The store's edge: the domain's enums as they are written to and read from SQLite.
//! Each is stored as the same text it always was (`as_str`), so no data migration; an
//! unknown text read back is a conversion error, never a guess.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use super::kinds::{EventOutcome, RunMode};
use super::{EventKind, JobState, ResultSource, RunStatus};
use crate::api::Category;
use crate::manifest::ExpectedStatus;

/// The value whose stored text is exactly `text` (no case folding, no trimming).
fn parse_text<T: Copy>(
    value: ValueRef<'_>,
    what: &str,
    all: &[T],
    as_str: impl Fn(T) -> &'static str,
) -> FromSqlResult<T> {
    let text = value.as_str()?;
    all.iter()
        .copied()
        .find(|v| as_str(*v) == text)
        .ok_or_else(|| FromSqlError::Other(format!("unknown {what} {text:?}").into()))
}

macro_rules! stored_as_text {
    ($($ty:ty => $what:literal),* $(,)?) => {$(
        impl ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $ty {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                parse_text(value, $what, &<$ty>::ALL, <$ty>::as_str)
            }
        }
    )*};
}

stored_as_text! {
    JobState => "job state",
    RunStatus => "run status",
    RunMode => "run mode",
    Category => "result category",
    ExpectedStatus => "expected status",
    ResultSource => "result source",
    EventKind => "event kind",
    EventOutcome => "event outcome",
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    fn round_trip<T: ToSql + FromSql + PartialEq + std::fmt::Debug>(value: T, text: &str) {
        let conn = Connection::open_in_memory().unwrap();
        let stored: String = conn.query_row("SELECT ?1", [&value], |r| r.get(0)).unwrap();
        assert_eq!(stored, text);
        let back: T = conn.query_row("SELECT ?1", [text], |r| r.get(0)).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn each_type_is_stored_as_its_old_text() {
        for s in JobState::ALL {
            round_trip(s, s.as_str());
        }
        round_trip(RunStatus::Interrupted, "interrupted");
        round_trip(RunMode::Poll, "poll");
        round_trip(RunMode::Submit, "submit");
        round_trip(Category::ProvisionallyApproved, "Provisionally Approved");
        round_trip(ExpectedStatus::Pending, "pending");
        round_trip(ResultSource::JobStatus, "job_status");
        round_trip(EventKind::Callback, "callback");
        round_trip(EventOutcome::NotFound, "not_found");
        round_trip(EventOutcome::Unset, "");
    }

    #[test]
    fn unknown_text_is_an_error() {
        let conn = Connection::open_in_memory().unwrap();
        let read = conn.query_row("SELECT 'Approvedish'", [], |r| r.get::<_, Category>(0));
        assert!(read.is_err());
        let read = conn.query_row("SELECT 'Pending'", [], |r| r.get::<_, ExpectedStatus>(0));
        assert!(read.is_err(), "stored text is exact, not case-folded");
    }
}
