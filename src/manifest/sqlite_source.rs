//! SQLite manifests: `--manifest app.db --query "SELECT ..."`, the same column names as a
//! CSV. The database is opened read-only and the statement must only read.

use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha256};

use super::error::{ManifestError, ReadError};
use super::row::RowError;
use super::validate::Columns;
use super::{RawRow, RowKind};

fn query_error(path: &Path, e: impl std::fmt::Display) -> ManifestError {
    ManifestError::Query {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

fn open(path: &Path) -> Result<Connection, ManifestError> {
    if path.is_dir() {
        return Err(ManifestError::Directory {
            path: path.display().to_string(),
        });
    }
    if !path.exists() {
        return Err(super::error::unreadable(path, "no such file"));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| super::error::unreadable(path, e))?;
    // A live application database may be mid-write: wait for it rather than fail at once.
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| super::error::unreadable(path, e))?;
    Ok(conn)
}

/// Walks the query's rows: column names, then each row's cells as text.
fn each_row(
    path: &Path,
    query: &str,
    mut f: impl FnMut(
        Option<&[String]>,
        i64,
        Vec<String>,
        Option<(usize, &'static str)>,
    ) -> Result<(), ManifestError>,
) -> Result<(), ManifestError> {
    let conn = open(path)?;
    let mut stmt = conn.prepare(query).map_err(|e| query_error(path, e))?;
    if !stmt.readonly() {
        return Err(ManifestError::NotReadOnly {
            path: path.display().to_string(),
        });
    }
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    f(Some(&names), 0, Vec::new(), None)?;
    let mut rows = stmt.query([]).map_err(|e| query_error(path, e))?;
    let mut index = 0i64;
    while let Some(row) = rows.next().map_err(|e| query_error(path, e))? {
        index += 1;
        let mut cells = Vec::with_capacity(names.len());
        let mut bad = None;
        for i in 0..names.len() {
            let value = row.get_ref(i).map_err(|e| query_error(path, e))?;
            let text = match value {
                ValueRef::Null => String::new(),
                ValueRef::Integer(n) => n.to_string(),
                ValueRef::Real(x) => x.to_string(),
                ValueRef::Text(t) | ValueRef::Blob(t) => match std::str::from_utf8(t) {
                    Ok(s) => s.to_owned(),
                    Err(_) => {
                        bad.get_or_insert((i, "is not valid UTF-8 text"));
                        String::from_utf8_lossy(t).into_owned()
                    }
                },
            };
            cells.push(text);
        }
        f(None, index, cells, bad)?;
    }
    Ok(())
}

/// The query and every row it returns: a live application database changes with every
/// write, but a run only cares whether its rows did.
pub fn fingerprint(path: &Path, query: &str) -> Result<String, ManifestError> {
    let mut hash = Sha256::new();
    hash.update(query.trim().as_bytes());
    hash.update([0u8]);
    each_row(path, query, |names, _, cells, bad| {
        // (A row with a bad cell hashes as a marker, as it always has: runs already
        // started keep their fingerprint.)
        let parts = match (names, bad) {
            (Some(names), _) => names.to_vec(),
            (None, None) => cells,
            (None, Some((i, _))) => vec![format!("(bad cell {i})")],
        };
        for part in parts {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part.as_bytes());
        }
        hash.update([0xffu8]);
        Ok(())
    })?;
    Ok(hex::encode(hash.finalize()))
}

pub fn read<E>(
    path: &Path,
    query: &str,
    kind: RowKind,
    handle: &mut impl FnMut(&Columns, RawRow<'_>) -> Result<(), ReadError<E>>,
) -> Result<(), ReadError<E>> {
    let shown = path.display().to_string();
    let mut columns: Option<Columns> = None;
    // The consumer's own error is carried out past `each_row`, which only knows ours.
    let mut sink_error: Option<E> = None;
    let walked = each_row(path, query, |names, line, cells, bad| {
        if let Some(names) = names {
            columns = Some(Columns::new(&shown, names.to_vec(), kind)?);
            return Ok(());
        }
        let Some(columns) = columns.as_ref() else {
            return Ok(());
        };
        let error = bad.map(|(i, reason)| RowError {
            line,
            field: columns.name(i).unwrap_or("?").to_owned(),
            reason: reason.into(),
        });
        match handle(
            columns,
            RawRow {
                line,
                cells: &cells,
                error,
            },
        ) {
            Ok(()) => Ok(()),
            Err(ReadError::Manifest(e)) => Err(e),
            Err(ReadError::Sink(e)) => {
                sink_error = Some(e);
                Err(ManifestError::Query {
                    path: shown.clone(),
                    reason: "stopped".into(),
                })
            }
        }
    });
    if let Some(e) = sink_error {
        return Err(ReadError::Sink(e));
    }
    walked.map_err(ReadError::Manifest)
}
