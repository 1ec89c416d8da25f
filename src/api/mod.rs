//! The Smile ID wire protocol: signatures, bodies, codes, ID formats and the HTTP client.
//!
//! This module knows nothing of manifests, the store or the engine; the sandbox shares it
//! with the client side and nothing else.

pub mod client;
pub mod codes;
pub mod endpoint;
pub mod id_formats;
pub mod id_types;
pub mod models;
pub mod signature;
pub mod tls;

pub use client::{ApiError, ClientConfig, SmileClient, SubmitReply};
pub use codes::{Category, RetryClass};
pub use endpoint::{Endpoint, Environment, SubmitEndpoint};
pub use signature::{ApiKey, Credentials, SignedStamp, TimestampStyle};
pub use tls::{CaCertError, load_ca_file};
