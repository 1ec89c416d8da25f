//! A run's configuration: every setting declared once ([`declare`]), merged layer over
//! layer (flag and its environment variable > job spec > the configuration stored with
//! the run > default), and resolved once, before the run exists, into typed [`Settings`].
//! Knows nothing of the command line: `cli` builds a [`Layer`] from its flags, the job
//! spec from its keys.

pub mod check;
pub mod credentials;
pub mod declare;
mod error;
pub mod policy;
pub mod report;
pub mod settings;

pub use declare::{Layer, SETTINGS, SettingInfo};
pub use error::ConfigError;
pub use settings::Settings;
