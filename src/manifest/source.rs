//! Where a manifest's rows come from.

use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManifestSource {
    Csv(PathBuf),
    Sqlite { path: PathBuf, query: String },
}

impl ManifestSource {
    /// `--manifest FILE [--query SQL]`: with a query the file is a SQLite database.
    pub fn from_args(path: PathBuf, query: Option<String>) -> Self {
        match query {
            Some(query) => ManifestSource::Sqlite { path, query },
            None => ManifestSource::Csv(path),
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            ManifestSource::Csv(path) | ManifestSource::Sqlite { path, .. } => path,
        }
    }

    pub fn display(&self) -> String {
        match self {
            ManifestSource::Csv(path) => path.display().to_string(),
            ManifestSource::Sqlite { path, query } => {
                format!("{} ({})", path.display(), query.trim())
            }
        }
    }
}
