//! Manifests: the rows a run works through, from a CSV file or a SQLite query. Rows are
//! streamed (never the whole file in memory) and validated one by one; a bad row becomes
//! an `invalid` row naming its line, field and reason, and the rest go on.

use crate::api::id_types::IdTypes;

mod csv_source;
mod error;
mod job_id;
mod row;
mod source;
mod sqlite_source;
mod validate;

pub use error::{ManifestError, ReadError};
pub use job_id::derive_job_id;
pub use row::{ExpectedStatus, PollRow, Row, RowBody, RowError, VerifyRow};
pub use source::ManifestSource;
pub use validate::{
    MAX_COLUMN_NAME_BYTES, MAX_COLUMNS, MAX_EXTRA_CELL_BYTES, MAX_EXTRA_COLUMNS, MAX_FIELD_BYTES,
    MAX_HEADER_BYTES, RESERVED_COLUMNS,
};

/// Which columns a manifest's rows carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowKind {
    /// Identity Verification rows (`submit`).
    Verify,
    /// job_status rows (`poll`).
    Poll,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ManifestSummary {
    /// Rows read (those skipped by `skip_through` included).
    pub rows: u64,
    pub valid: u64,
    pub invalid: u64,
}

/// One raw row: its line (the physical line it starts on; for SQLite, its 1-based index)
/// and its cells, in the header's order. A cell that is not UTF-8 is decoded lossily (so
/// the row keeps its user_id and job_id for staging) and the row carries that error. The
/// cells are borrowed from the reader, which refills the same buffers for every row.
pub(crate) struct RawRow<'a> {
    pub line: i64,
    pub cells: &'a [String],
    pub error: Option<RowError>,
}

/// A SHA-256 that changes whenever the rows could: the CSV file's bytes, or the SQLite
/// query and every row it returns (the database file itself changes with any write).
pub fn fingerprint(source: &ManifestSource) -> Result<String, ManifestError> {
    match source {
        ManifestSource::Csv(path) => csv_source::fingerprint(path),
        ManifestSource::Sqlite { path, query } => sqlite_source::fingerprint(path, query),
    }
}

/// Reads every row in order and hands it to `f`, validating against the built-in id type
/// table (unknown types refused). Rows on lines up to `skip_through` are read but not
/// handed on (staging that resumes after its last staged line).
pub fn read<E>(
    source: &ManifestSource,
    kind: RowKind,
    job_id_salt: &str,
    skip_through: i64,
    f: impl FnMut(Row) -> Result<(), E>,
) -> Result<ManifestSummary, ReadError<E>> {
    read_with(
        source,
        kind,
        job_id_salt,
        skip_through,
        IdTypes::builtin_shared(),
        f,
    )
}

/// [`read`] against the given id types (a run's `/v1/services` answer merged with the
/// built-in table, and its `--unknown-id-types`).
pub fn read_with<E>(
    source: &ManifestSource,
    kind: RowKind,
    job_id_salt: &str,
    skip_through: i64,
    rules: &IdTypes,
    mut f: impl FnMut(Row) -> Result<(), E>,
) -> Result<ManifestSummary, ReadError<E>> {
    let mut summary = ManifestSummary::default();
    let mut handle = |columns: &validate::Columns, raw: RawRow<'_>| -> Result<(), ReadError<E>> {
        summary.rows += 1;
        if raw.line <= skip_through {
            return Ok(());
        }
        let row = validate::row(columns, kind, job_id_salt, rules, raw);
        if matches!(row.body, RowBody::Invalid(_)) {
            summary.invalid += 1;
        } else {
            summary.valid += 1;
        }
        f(row).map_err(ReadError::Sink)
    };
    match source {
        ManifestSource::Csv(path) => csv_source::read(path, kind, &mut handle)?,
        ManifestSource::Sqlite { path, query } => {
            sqlite_source::read(path, query, kind, &mut handle)?
        }
    }
    Ok(summary)
}
