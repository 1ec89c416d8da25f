//! CSV manifests: a header, UTF-8 (a BOM is accepted), CRLF or LF, quoted fields that may
//! span lines. Read record by record; a row's line is the physical line it starts on.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::error::{ManifestError, unreadable};
use super::row::RowError;
use super::validate::Columns;
use super::{RawRow, RowKind};

fn open(path: &Path) -> Result<File, ManifestError> {
    if path.is_dir() {
        return Err(ManifestError::Directory {
            path: path.display().to_string(),
        });
    }
    File::open(path).map_err(|e| unreadable(path, e))
}

pub fn fingerprint(path: &Path) -> Result<String, ManifestError> {
    let mut file = BufReader::with_capacity(1 << 16, open(path)?);
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(|e| unreadable(path, e))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(hex::encode(hash.finalize()))
}

pub fn read<E>(
    path: &Path,
    kind: RowKind,
    handle: &mut impl FnMut(&Columns, RawRow) -> Result<(), super::ReadError<E>>,
) -> Result<(), super::ReadError<E>> {
    let shown = path.display().to_string();
    // Records end at '\n' only: with the default CRLF terminator the csv crate reports the
    // line of every record after the first one short by one in CRLF files. A '\r' before
    // the '\n' is then part of the last cell, and cells are trimmed.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_reader(BufReader::with_capacity(1 << 16, open(path)?));
    let mut record = csv::ByteRecord::new();
    let csv_error = |e: csv::Error| match e.kind() {
        csv::ErrorKind::Io(_) => unreadable(path, &e),
        _ => ManifestError::Csv {
            path: shown.clone(),
            line: e.position().map(|p| p.line()).unwrap_or(0),
            reason: e.to_string(),
        },
    };

    if !reader.read_byte_record(&mut record).map_err(csv_error)? {
        return Err(ManifestError::Empty { path: shown }.into());
    }
    let mut header = Vec::with_capacity(record.len());
    for (i, field) in record.iter().enumerate() {
        let field = if i == 0 {
            field.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(field)
        } else {
            field
        };
        let name = std::str::from_utf8(field).map_err(|_| ManifestError::HeaderEncoding {
            path: shown.clone(),
        })?;
        header.push(name.to_owned());
    }
    let columns = Columns::new(&shown, header, kind)?;

    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(e).into()),
        }
        let line = record.position().map(|p| p.line() as i64).unwrap_or(0);
        if is_blank(&record) {
            continue;
        }
        let mut error = None;
        let cells = record
            .iter()
            .enumerate()
            .map(|(i, field)| match std::str::from_utf8(field) {
                Ok(s) => s.to_owned(),
                Err(_) => {
                    error.get_or_insert_with(|| RowError {
                        line,
                        field: header_name(&columns, i),
                        reason: "is not valid UTF-8".into(),
                    });
                    String::from_utf8_lossy(field).into_owned()
                }
            })
            .collect();
        handle(&columns, RawRow { line, cells, error })?;
    }
    Ok(())
}

/// A line with nothing on it. The csv crate skips empty lines itself, but records end at
/// '\n' only here, so a blank line of a CRLF file arrives as a single "\r" cell.
fn is_blank(record: &csv::ByteRecord) -> bool {
    record.len() == 1 && record[0].iter().all(u8::is_ascii_whitespace)
}

fn header_name(columns: &Columns, i: usize) -> String {
    columns.name(i).unwrap_or("(extra field)").to_owned()
}
