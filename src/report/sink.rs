//! Where report files go: each is written to a temporary file beside its name (0600, never
//! through a link) and takes that name only once complete, so a full disk or a kill leaves
//! the previous report whole.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::ReportError;
use super::reconcile::DiscrepancyKind;
use super::results_csv;
use crate::files::AtomicFile;
use crate::store::JobRecord;

/// Whether reports show personal data (ID numbers) in clear or masked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pii {
    #[default]
    Masked,
    /// `--show-pii`.
    Shown,
}

impl Pii {
    pub fn from_show_pii(show: bool) -> Self {
        if show { Pii::Shown } else { Pii::Masked }
    }

    pub fn shown(self) -> bool {
        self == Pii::Shown
    }
}

type CsvWriter = csv::Writer<BufWriter<AtomicFile>>;

/// One CSV file being written.
pub struct CsvFile {
    writer: CsvWriter,
    path: PathBuf,
}

impl CsvFile {
    pub fn create(path: PathBuf, header: &[&str]) -> Result<Self, ReportError> {
        let file = AtomicFile::create(&path).map_err(|e| ReportError::write(&path, e))?;
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(BufWriter::new(file));
        writer
            .write_record(header)
            .map_err(|e| ReportError::csv(&path, e))?;
        Ok(Self { writer, path })
    }

    /// Writes one row with `write`, naming the file in its error.
    pub fn row(
        &mut self,
        write: impl FnOnce(&mut CsvWriter) -> csv::Result<()>,
    ) -> Result<(), ReportError> {
        write(&mut self.writer).map_err(|e| ReportError::csv(&self.path, e))
    }

    /// Flushes and gives the file its name.
    pub fn finish(self) -> Result<PathBuf, ReportError> {
        let path = self.path;
        let buffered = self
            .writer
            .into_inner()
            .map_err(|e| ReportError::write(&path, e.into_error()))?;
        let file = buffered
            .into_inner()
            .map_err(|e| ReportError::write(&path, e.into_error()))?;
        file.commit().map_err(|e| ReportError::write(&path, e))?;
        Ok(path)
    }
}

/// The per-job CSVs, fed during the one scan of the jobs: `results.csv` (every job) and
/// `discrepancies.csv` (every disagreement of a poll run).
pub struct JobRowFiles {
    results: CsvFile,
    discrepancies: CsvFile,
    pii: Pii,
}

impl JobRowFiles {
    pub fn create(dir: &Path, pii: Pii) -> Result<Self, ReportError> {
        Ok(Self {
            results: CsvFile::create(dir.join("results.csv"), &results_csv::RESULT_HEADER)?,
            discrepancies: CsvFile::create(
                dir.join("discrepancies.csv"),
                &results_csv::DISCREPANCY_HEADER,
            )?,
            pii,
        })
    }

    pub fn add(
        &mut self,
        job: &JobRecord,
        discrepancy: Option<DiscrepancyKind>,
    ) -> Result<(), ReportError> {
        if let Some(kind) = discrepancy {
            self.discrepancies
                .row(|w| results_csv::write_discrepancy(w, job, kind))?;
        }
        let pii = self.pii;
        self.results
            .row(|w| results_csv::write_result(w, job, pii.shown()))
    }

    /// Both files' paths, once complete.
    pub fn finish(self) -> Result<[PathBuf; 2], ReportError> {
        Ok([self.results.finish()?, self.discrepancies.finish()?])
    }
}

/// A whole text file (summary.json, summary.md, report.html).
pub fn text_file(path: PathBuf, text: &str) -> Result<PathBuf, ReportError> {
    let mut f = AtomicFile::create(&path).map_err(|e| ReportError::write(&path, e))?;
    f.write_all(text.as_bytes())
        .map_err(|e| ReportError::write(&path, e))?;
    f.commit().map_err(|e| ReportError::write(&path, e))?;
    Ok(path)
}
