//! What the runner does when a run cannot simply go on.

use serde::Deserialize;

/// What an unfinished run whose manifest changed gets when its name runs again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnChangedManifest {
    /// Exit 1, naming the run: a person decides.
    #[default]
    Refuse,
    /// The unfinished run is abandoned (kept in history) and a new run starts.
    Abandon,
}

impl OnChangedManifest {
    pub fn as_str(self) -> &'static str {
        match self {
            OnChangedManifest::Refuse => "refuse",
            OnChangedManifest::Abandon => "abandon",
        }
    }
}
