//! What can go wrong talking to a registry, each said in one line that names the
//! operation and its object, and quotes the registry's own error code.

use std::io;
use std::path::PathBuf;

use crate::image::digest::Digest;

/// Errors from talking to a registry. Each names the operation and what it was about
/// (`pull manifest localhost:5000/x:latest`), and quotes the registry's own error.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Not a registry host name.
    #[error("registry {registry:?} {reason}")]
    BadRegistry {
        /// What was given.
        registry: String,
        /// What is wrong with it: `is not a valid host name`, …
        reason: String,
    },
    /// HTTPS failed, and plain HTTP is not allowed for this registry.
    #[error(
        "connect to registry {registry} at {url}: {source}; if it serves plain HTTP or a \
         self-signed certificate, pass --tls-verify=false"
    )]
    Https {
        /// The registry.
        registry: String,
        /// The URL tried.
        url: String,
        /// What failed.
        source: Box<ureq::Error>,
    },
    /// Neither HTTPS nor plain HTTP reached the registry.
    #[error("connect to registry {registry}: over HTTPS: {https}; at {url}: {source}")]
    Unreachable {
        /// The registry.
        registry: String,
        /// The plain HTTP URL tried last.
        url: String,
        /// Why HTTPS failed.
        https: String,
        /// Why plain HTTP failed.
        source: Box<ureq::Error>,
    },
    /// A request failed below HTTP: connection, TLS, timeout.
    #[error("{operation} {target}: {source}")]
    Transport {
        /// What was being done: `pull manifest`, `push blob`, …
        operation: &'static str,
        /// What it was done to: `REGISTRY/REPOSITORY:TAG`, `…@DIGEST`.
        target: String,
        /// The client's error.
        source: Box<ureq::Error>,
    },
    /// The registry answered with an error status.
    #[error(
        "{operation} {target}: {message} ({status}{})",
        code.as_deref().map(|code| format!(" {code}")).unwrap_or_default()
    )]
    Status {
        /// What was being done.
        operation: &'static str,
        /// What it was done to.
        target: String,
        /// The HTTP status.
        status: u16,
        /// The registry's error code (`MANIFEST_UNKNOWN`, `BLOB_UNKNOWN`, `DENIED`, …).
        code: Option<String>,
        /// The registry's message, or the status's name.
        message: String,
    },
    /// A repository or reference that is not a valid name: it would bend the URL.
    #[error("{operation} {target}: {reason}")]
    BadName {
        /// What was being done.
        operation: &'static str,
        /// What it was done to.
        target: String,
        /// What is wrong with the name.
        reason: String,
    },
    /// The registry's answer breaks the protocol (no `Location`, a bad digest header, …).
    #[error("{operation} {target}: {reason}")]
    Protocol {
        /// What was being done.
        operation: &'static str,
        /// What it was done to.
        target: String,
        /// What was wrong.
        reason: String,
    },
    /// What arrived does not hash to the digest it was asked for.
    #[error("{operation} {target}: the content's digest is {actual}, refused")]
    DigestMismatch {
        /// What was being done.
        operation: &'static str,
        /// What it was done to.
        target: String,
        /// The digest of what arrived.
        actual: Digest,
    },
    /// A manifest larger than any real one.
    #[error("{operation} {target}: the manifest is larger than {limit} bytes, refused")]
    TooLarge {
        /// What was being done.
        operation: &'static str,
        /// What it was done to.
        target: String,
        /// The limit.
        limit: u64,
    },
    /// Receiving the body failed half-way.
    #[error("{operation} {target}: receive: {source}")]
    Receive {
        /// What was being done.
        operation: &'static str,
        /// What it was done to.
        target: String,
        /// The error.
        source: io::Error,
    },
    /// Writing a downloaded blob failed.
    #[error("{operation} {target}: write: {source}")]
    Write {
        /// What was being done.
        operation: &'static str,
        /// What it was done to.
        target: String,
        /// The error.
        source: io::Error,
    },
    /// Reading the data to upload failed, or it ended early.
    #[error("{operation} {target}: read the data: {source}")]
    ReadData {
        /// What was being done.
        operation: &'static str,
        /// What it was done to.
        target: String,
        /// The error.
        source: io::Error,
    },
    /// The token endpoint a Bearer challenge named refused or failed.
    #[error("{operation} {target}: get a token from {realm}: {reason}")]
    Token {
        /// What was being done.
        operation: &'static str,
        /// What it was done to.
        target: String,
        /// The token endpoint.
        realm: String,
        /// What went wrong.
        reason: String,
    },
    /// An auth file could not be read.
    #[error("read auth file {path}: {source}")]
    AuthFileRead {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// An auth file is not JSON of the docker/podman shape.
    #[error("parse auth file {path}: {source}")]
    AuthFileJson {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// An auth file's entry is malformed.
    #[error("auth file {path}: entry {key:?}: {reason}")]
    AuthFileEntry {
        /// The file.
        path: PathBuf,
        /// The entry's key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// What a request is part of, for its errors: `pull manifest` of `HOST/NAME:TAG`.
pub(super) struct Op {
    pub(super) name: &'static str,
    pub(super) target: String,
}

impl Op {
    pub(super) fn new(name: &'static str, target: String) -> Op {
        Op { name, target }
    }

    pub(super) fn bad_name(&self, reason: String) -> RegistryError {
        RegistryError::BadName {
            operation: self.name,
            target: self.target.clone(),
            reason,
        }
    }

    pub(super) fn receive(&self, source: io::Error) -> RegistryError {
        RegistryError::Receive {
            operation: self.name,
            target: self.target.clone(),
            source,
        }
    }

    pub(super) fn mismatch(&self, actual: Digest) -> RegistryError {
        RegistryError::DigestMismatch {
            operation: self.name,
            target: self.target.clone(),
            actual,
        }
    }

    pub(super) fn transport(&self, source: ureq::Error) -> RegistryError {
        RegistryError::Transport {
            operation: self.name,
            target: self.target.clone(),
            source: Box::new(source),
        }
    }

    pub(super) fn protocol(&self, reason: String) -> RegistryError {
        RegistryError::Protocol {
            operation: self.name,
            target: self.target.clone(),
            reason,
        }
    }
}
