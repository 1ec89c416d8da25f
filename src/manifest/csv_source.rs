//! CSV manifests: a header, UTF-8 (a BOM is accepted), CRLF or LF, quoted fields that may
//! span lines. Read record by record; a row's line is the physical line it starts on.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::error::{ManifestError, unreadable};
use super::row::RowError;
use super::validate::{Columns, MAX_COLUMNS, MAX_FIELD_BYTES, MAX_HEADER_BYTES};
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

/// The csv crate's read-ahead buffer.
const BUFFER: usize = 1 << 16;

/// A reader that stops with an error once more than `limit` bytes in all have been read
/// from it, so that one record (a header of a million columns, a row without a newline)
/// cannot make the csv crate buffer the whole file. The limit moves with each record.
struct Capped<R> {
    inner: R,
    read: std::rc::Rc<std::cell::Cell<u64>>,
    limit: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let room = self.limit.get().saturating_sub(self.read.get());
        if room == 0 {
            return Err(std::io::Error::other("record too long"));
        }
        let take = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..take])?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

/// The most bytes one row's record may take.
fn max_record_bytes() -> usize {
    MAX_COLUMNS * (MAX_FIELD_BYTES + 3)
}

pub fn read<E>(
    path: &Path,
    kind: RowKind,
    handle: &mut impl FnMut(&Columns, RawRow<'_>) -> Result<(), super::ReadError<E>>,
) -> Result<(), super::ReadError<E>> {
    let mut csv = CappedCsv::open(path)?;
    let mut record = csv::ByteRecord::new();
    let columns = csv.header(&mut record, kind)?;
    // One row's cells, refilled in place for every row (no allocation per cell once the
    // buffers have grown to the manifest's widest cells).
    let mut cells: Vec<String> = Vec::with_capacity(columns.len());
    loop {
        // One record may take its own bound, plus what the crate has read ahead.
        let start = csv.reader.position().clone();
        csv.limit
            .set(start.byte() + (max_record_bytes() + BUFFER) as u64);
        match csv.reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv.error(e, false, start.line()).into()),
        }
        let line = record.position().map(|p| p.line() as i64).unwrap_or(0);
        if is_blank(&record) {
            continue;
        }
        let error = fill_cells(&mut cells, &record, line, &columns);
        handle(
            &columns,
            RawRow {
                line,
                cells: &cells,
                error,
            },
        )?;
    }
    Ok(())
}

/// The csv crate's reader over a [`Capped`] file, with the cap's counters.
struct CappedCsv<'p> {
    path: &'p Path,
    shown: String,
    reader: csv::Reader<Capped<File>>,
    read: std::rc::Rc<std::cell::Cell<u64>>,
    limit: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<'p> CappedCsv<'p> {
    /// Opens the file, capped at the header's bound until the header is read.
    fn open(path: &'p Path) -> Result<Self, ManifestError> {
        // Records end at '\n' only: with the default CRLF terminator the csv crate reports
        // the line of every record after the first one short by one in CRLF files. A '\r'
        // before the '\n' is then part of the last cell, and cells are trimmed.
        let read = std::rc::Rc::new(std::cell::Cell::new(0u64));
        let limit = std::rc::Rc::new(std::cell::Cell::new((MAX_HEADER_BYTES + BUFFER) as u64));
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .terminator(csv::Terminator::Any(b'\n'))
            .buffer_capacity(BUFFER)
            .from_reader(Capped {
                inner: open(path)?,
                read: read.clone(),
                limit: limit.clone(),
            });
        Ok(Self {
            path,
            shown: path.display().to_string(),
            reader,
            read,
            limit,
        })
    }

    /// What a csv error means: a record over its bound (the cap refused to read on), an
    /// I/O error, or malformed CSV.
    fn error(&self, e: csv::Error, in_header: bool, start_line: u64) -> ManifestError {
        match e.kind() {
            csv::ErrorKind::Io(_) if self.read.get() >= self.limit.get() => {
                if in_header {
                    ManifestError::HeaderTooLong {
                        path: self.shown.clone(),
                        max: MAX_HEADER_BYTES,
                        columns: MAX_COLUMNS,
                    }
                } else {
                    ManifestError::RecordTooLong {
                        path: self.shown.clone(),
                        line: start_line,
                        max: max_record_bytes(),
                        columns: MAX_COLUMNS,
                        field: MAX_FIELD_BYTES,
                    }
                }
            }
            csv::ErrorKind::Io(_) => unreadable(self.path, &e),
            _ => ManifestError::Csv {
                path: self.shown.clone(),
                line: e.position().map(|p| p.line()).unwrap_or(0),
                reason: e.to_string(),
            },
        }
    }

    /// Reads the header (the first record, a UTF-8 BOM stripped) into its columns.
    fn header(
        &mut self,
        record: &mut csv::ByteRecord,
        kind: RowKind,
    ) -> Result<Columns, ManifestError> {
        if !self
            .reader
            .read_byte_record(record)
            .map_err(|e| self.error(e, true, 1))?
        {
            return Err(ManifestError::Empty {
                path: self.shown.clone(),
            });
        }
        if self.reader.position().byte() > MAX_HEADER_BYTES as u64 {
            return Err(ManifestError::HeaderTooLong {
                path: self.shown.clone(),
                max: MAX_HEADER_BYTES,
                columns: MAX_COLUMNS,
            });
        }
        let mut header = Vec::with_capacity(record.len());
        for (i, field) in record.iter().enumerate() {
            let field = if i == 0 {
                field.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(field)
            } else {
                field
            };
            let name = std::str::from_utf8(field).map_err(|_| ManifestError::HeaderEncoding {
                path: self.shown.clone(),
            })?;
            header.push(name.to_owned());
        }
        Columns::new(&self.shown, header, kind)
    }
}

/// A record's cells as text, into `cells` (one per field, the buffers reused); a cell that
/// is not UTF-8 is kept lossily and the row carries the error (its first such field).
fn fill_cells(
    cells: &mut Vec<String>,
    record: &csv::ByteRecord,
    line: i64,
    columns: &Columns,
) -> Option<RowError> {
    let mut error = None;
    cells.truncate(record.len());
    for (i, field) in record.iter().enumerate() {
        if i == cells.len() {
            cells.push(String::new());
        }
        let Some(cell) = cells.get_mut(i) else {
            break;
        };
        cell.clear();
        match std::str::from_utf8(field) {
            Ok(s) => cell.push_str(s),
            Err(_) => {
                error.get_or_insert_with(|| RowError {
                    line,
                    field: header_name(columns, i),
                    reason: "is not valid UTF-8".into(),
                });
                cell.push_str(&String::from_utf8_lossy(field));
            }
        }
    }
    error
}

/// A line with nothing on it. The csv crate skips empty lines itself, but records end at
/// '\n' only here, so a blank line of a CRLF file arrives as a single "\r" cell.
fn is_blank(record: &csv::ByteRecord) -> bool {
    record.len() == 1 && record[0].iter().all(u8::is_ascii_whitespace)
}

fn header_name(columns: &Columns, i: usize) -> String {
    columns.name(i).unwrap_or("(extra field)").to_owned()
}
