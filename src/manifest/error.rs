//! Whole-manifest failures. Each message names the file (and line or column where there
//! is one) and never quotes a cell, which may hold personal data.

use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: cannot read the manifest: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("{path}: is a directory, not a manifest file")]
    Directory { path: String },
    #[error("{path}: the manifest is empty; it needs a header line naming its columns")]
    Empty { path: String },
    #[error("{path}: line 1: the header is not valid UTF-8")]
    HeaderEncoding { path: String },
    #[error("{path}: line 1: column {column:?} appears twice in the header")]
    DuplicateColumn { path: String, column: String },
    #[error("{path}: line 1: the header has no {column:?} column (needed: {needed})")]
    MissingColumn {
        path: String,
        column: String,
        needed: String,
    },
    #[error(
        "{path}: line 1: the header is longer than {max} bytes; a manifest has at most {columns} \
         columns"
    )]
    HeaderTooLong {
        path: String,
        max: usize,
        columns: usize,
    },
    #[error(
        "{path}: line 1: the header has {count} columns, more than {max} (at most {extra} \
         beyond the known ones become partner_params)"
    )]
    TooManyColumns {
        path: String,
        count: usize,
        max: usize,
        extra: usize,
    },
    #[error(
        "{path}: line 1: {count} extra columns (sent as partner_params), more than {max}; \
         remove the columns the request does not need"
    )]
    TooManyExtraColumns {
        path: String,
        count: usize,
        max: usize,
    },
    #[error(
        "{path}: line 1, field {column:?}: a column name may be at most {max} bytes (this one \
         is {len})"
    )]
    ColumnNameTooLong {
        path: String,
        column: String,
        len: usize,
        max: usize,
    },
    #[error(
        "{path}: line 1, field {column:?}: the name is reserved (the request sets \
         {column:?} itself; an extra column of that name would send it twice): rename or \
         remove the column"
    )]
    ReservedColumn { path: String, column: String },
    #[error(
        "{path}: line {line}: the record is longer than {max} bytes (at most {columns} \
         fields of {field} bytes); the file cannot be read past it"
    )]
    RecordTooLong {
        path: String,
        line: u64,
        max: usize,
        columns: usize,
        field: usize,
    },
    #[error("{path}: line {line}: {reason}")]
    Csv {
        path: String,
        line: u64,
        reason: String,
    },
    #[error("{path}: the SQLite query failed: {reason}")]
    Query { path: String, reason: String },
    #[error("{path}: the query must only read (a SELECT), it would change the database")]
    NotReadOnly { path: String },
}

/// A read stopped by the manifest, or by the consumer of its rows.
#[derive(Debug)]
pub enum ReadError<E> {
    Manifest(ManifestError),
    Sink(E),
}

impl<E> From<ManifestError> for ReadError<E> {
    fn from(e: ManifestError) -> Self {
        ReadError::Manifest(e)
    }
}

impl<E: fmt::Display> fmt::Display for ReadError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Manifest(e) => e.fmt(f),
            ReadError::Sink(e) => e.fmt(f),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for ReadError<E> {}

pub(crate) fn unreadable(path: &std::path::Path, e: impl fmt::Display) -> ManifestError {
    ManifestError::Unreadable {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}
