//! The OCI distribution API: how `nutshell pull` and `nutshell push` talk to a registry.
//!
//! A registry is an HTTP server with a small, content-addressed API under `/v2/`:
//!
//! ```text
//! GET  /v2/                                   ping: 200, or 401 with a challenge
//! GET  /v2/NAME/manifests/TAG-OR-DIGEST       a manifest (or an index), Accept: its types
//! PUT  /v2/NAME/manifests/TAG                 store one under a tag
//! GET  /v2/NAME/blobs/DIGEST                  a config or layer blob
//! HEAD /v2/NAME/blobs/DIGEST                  does the registry have it? (skip the upload)
//! POST /v2/NAME/blobs/uploads/                start an upload: 202, Location: its URL
//! PATCH LOCATION                              send a chunk: 202, Location: the next URL
//! PUT  LOCATION?digest=DIGEST                 finish it (with the bytes: a monolithic upload)
//! ```
//!
//! Everything fetched is checked against its digest while it streams: a blob goes to disk
//! through a hash, and a registry (or anything between) that sends other bytes is caught.
//! Failures come back as JSON `{"errors": [{"code": "MANIFEST_UNKNOWN", …}]}`, which the
//! errors here quote.
//!
//! **Transport security.** HTTPS with certificate verification, always, unless the
//! registry is this machine (`localhost`, `127.x`, `[::1]`: docker's rule that loopback
//! registries are insecure) or the user passed `--tls-verify=false`. Then, like docker,
//! the client tries HTTPS without verification first and falls back to plain HTTP when
//! that fails at the transport level; the scheme that answered is kept for the client's
//! life. A remote registry without `--tls-verify=false` never gets plain HTTP, not even
//! a redirect to it: the error says which flag to pass.
//!
//! **Authentication** is answered when asked for (a `401`), see [`auth`].
//!
//! See also the [distribution spec](https://github.com/opencontainers/distribution-spec/blob/main/spec.md).

pub mod auth;
mod blob;
mod error;
mod manifest;
mod request;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use ureq::Body;
use ureq::http::{Method, Response, StatusCode};

use self::auth::{AuthFiles, Credentials};
use super::reference::{DOCKER_HUB, is_loopback_host, validate_registry};

pub use self::blob::Progress;
use self::error::Op;
pub use self::error::RegistryError;
pub use self::manifest::{Fetched, MAX_MANIFEST};
use self::request::Call;

/// OCI image index: a list of manifests, one per platform.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest: a config and layers.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker schema 2 manifest list: docker's index.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// The manifest types a pull accepts, most wanted first.
pub const MANIFEST_MEDIA_TYPES: [&str; 4] = [
    OCI_INDEX,
    OCI_MANIFEST,
    DOCKER_MANIFEST_LIST,
    DOCKER_MANIFEST,
];

/// How to reach a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryOptions {
    /// `Some(false)` (`--tls-verify=false`): accept any certificate, and plain HTTP.
    /// `None`: verify, except for a loopback registry. `Some(true)`: verify, always.
    pub tls_verify: Option<bool>,
    /// The auth file to read credentials from; `None` looks in the usual places (see
    /// [`auth::auth_files`]). A file named here must exist.
    pub auth_file: Option<PathBuf>,
    /// The limit on connecting, and on each wait for the registry to answer, read or
    /// accept bytes: a stalled transfer fails, a long steady one does not.
    pub timeout: Duration,
    /// Upload blobs in chunks of this many bytes (`PATCH` each); `None` sends each blob
    /// in one `PUT`.
    pub chunk_size: Option<u64>,
}

impl Default for RegistryOptions {
    fn default() -> RegistryOptions {
        RegistryOptions {
            tls_verify: None,
            auth_file: None,
            timeout: Duration::from_secs(30),
            chunk_size: None,
        }
    }
}

/// A client for one registry. It learns the scheme on its first request and keeps the
/// tokens it is given, one per scope.
pub struct Client {
    /// The registry as references name it: `docker.io`, `localhost:5000`.
    registry: String,
    /// Where to connect: Docker Hub's API is not at `docker.io`.
    host: String,
    agent: ureq::Agent,
    /// Plain HTTP and unverified certificates allowed.
    insecure: bool,
    /// `https://HOST` or `http://HOST`, once a ping has answered.
    base: Option<String>,
    auth_files: AuthFiles,
    /// The credentials, once looked up (`Some(None)`: there are none).
    credentials: Option<Option<(Credentials, PathBuf)>>,
    /// Bearer tokens by scope (`""` for none).
    tokens: HashMap<String, String>,
    /// The registry asked for Basic credentials: send them on every request.
    basic: bool,
    chunk_size: Option<u64>,
}

impl Client {
    /// A client for `registry` (`docker.io`, `quay.io`, `localhost:5000`). Nothing is
    /// sent yet.
    pub fn new(registry: &str, options: &RegistryOptions) -> Result<Client, RegistryError> {
        validate_registry(registry).map_err(|reason| RegistryError::BadRegistry {
            registry: registry.to_string(),
            reason,
        })?;
        let insecure = match options.tls_verify {
            Some(verify) => !verify,
            None => is_loopback_host(registry),
        };
        let timeout = Some(options.timeout);
        let tls = ureq::tls::TlsConfig::builder()
            .disable_verification(insecure)
            .build();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .https_only(!insecure)
            .tls_config(tls)
            .user_agent(concat!("nutshell/", env!("CARGO_PKG_VERSION")))
            .timeout_resolve(timeout)
            .timeout_connect(timeout)
            .timeout_send_request(timeout)
            .timeout_recv_response(timeout)
            .timeout_per_read(timeout)
            .timeout_per_write(timeout)
            .build()
            .new_agent();
        let host = if registry == DOCKER_HUB || registry == "index.docker.io" {
            "registry-1.docker.io".to_string()
        } else {
            registry.to_string()
        };
        let auth_files = auth::auth_files(options.auth_file.as_deref(), &|name| {
            std::env::var(name).ok()
        });
        Ok(Client {
            registry: registry.to_string(),
            host,
            agent,
            insecure,
            base: None,
            auth_files,
            credentials: None,
            tokens: HashMap::new(),
            basic: false,
            chunk_size: options.chunk_size.filter(|&size| size > 0),
        })
    }

    /// `GET /v2/`: is there a registry, and which scheme does it speak? A `401` counts
    /// as an answer: credentials are sent when a real request needs them.
    pub fn ping(&mut self) -> Result<(), RegistryError> {
        let op = Op::new("ping", format!("registry {}", self.registry));
        let response = match &self.base {
            None => self.probe()?,
            Some(base) => {
                let mut call = Call::new(Method::GET, format!("{base}/v2/"), None);
                self.run(&mut call, None)
                    .map_err(|source| op.transport(source))?
            }
        };
        match response.status() {
            StatusCode::OK | StatusCode::UNAUTHORIZED => Ok(()),
            _ => Err(self.status_error(&op, response)),
        }
    }

    // ANCHOR: probe
    /// Find the scheme: HTTPS, and only for an insecure registry plain HTTP after an
    /// HTTPS failure below HTTP (any HTTP answer, even an error status, settles it).
    fn probe(&mut self) -> Result<Response<Body>, RegistryError> {
        let https = format!("https://{}", self.host);
        let ping = |client: &Client, base: &str| {
            let mut call = Call::new(Method::GET, format!("{base}/v2/"), None);
            client.run(&mut call, None)
        };
        let https_error = match ping(self, &https) {
            Ok(response) => {
                self.base = Some(https);
                return Ok(response);
            }
            Err(source) if !self.insecure => {
                return Err(RegistryError::Https {
                    registry: self.registry.clone(),
                    url: format!("{https}/v2/"),
                    source: Box::new(source),
                });
            }
            Err(source) => source,
        };
        let http = format!("http://{}", self.host);
        match ping(self, &http) {
            Ok(response) => {
                self.base = Some(http);
                Ok(response)
            }
            Err(source) => Err(RegistryError::Unreachable {
                registry: self.registry.clone(),
                url: format!("{http}/v2/"),
                https: https_error.to_string(),
                source: Box::new(source),
            }),
        }
    }
    // ANCHOR_END: probe

    /// `https://HOST` or `http://HOST`, pinging first if not known yet.
    fn base(&mut self) -> Result<String, RegistryError> {
        if self.base.is_none() {
            self.probe()?;
        }
        Ok(self.base.clone().unwrap_or_default())
    }
}

impl std::fmt::Debug for Client {
    /// Never the tokens or the credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("registry", &self.registry)
            .field("base", &self.base)
            .field("insecure", &self.insecure)
            .field("chunk_size", &self.chunk_size)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_registry_is_https_only_and_a_loopback_one_may_be_plain_http() {
        let options = RegistryOptions::default();
        assert!(!Client::new("quay.io", &options).expect("valid").insecure);
        assert!(
            Client::new("localhost:5000", &options)
                .expect("valid")
                .insecure
        );
        assert!(
            Client::new("127.0.0.1:5000", &options)
                .expect("valid")
                .insecure
        );
        let no_verify = RegistryOptions {
            tls_verify: Some(false),
            ..RegistryOptions::default()
        };
        assert!(
            Client::new("10.0.0.1:5000", &no_verify)
                .expect("valid")
                .insecure
        );
        let verify = RegistryOptions {
            tls_verify: Some(true),
            ..RegistryOptions::default()
        };
        assert!(
            !Client::new("localhost:5000", &verify)
                .expect("valid")
                .insecure
        );
        assert_eq!(
            Client::new("docker.io", &options).expect("valid").host,
            "registry-1.docker.io"
        );
    }

    #[test]
    fn a_client_that_must_verify_never_sends_plain_http() {
        // Even with the scheme forced, the agent itself refuses: no request goes out.
        let verify = RegistryOptions {
            tls_verify: Some(true),
            ..RegistryOptions::default()
        };
        let mut client = Client::new("127.0.0.1:9", &verify).expect("valid");
        client.base = Some("http://127.0.0.1:9".to_string());
        let err = client.ping().expect_err("plain http");
        let message = err.to_string();
        assert!(
            message.starts_with("ping registry 127.0.0.1:9: "),
            "{message}"
        );
        assert!(message.contains("https only"), "{message}");
    }

    #[test]
    fn registry_names_that_are_not_hosts_are_refused() {
        for bad in ["", "a/b", "Quay.io:x", "has space", "host:99999"] {
            let err = Client::new(bad, &RegistryOptions::default())
                .err()
                .unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert!(
                err.to_string().starts_with(&format!("registry {bad:?} ")),
                "{err}"
            );
        }
    }

    #[test]
    fn the_status_error_is_one_line_with_the_registry_s_code() {
        let err = RegistryError::Status {
            operation: "pull manifest",
            target: "localhost:5000/x:latest".to_string(),
            status: 404,
            code: Some("MANIFEST_UNKNOWN".to_string()),
            message: "manifest unknown".to_string(),
        };
        assert_eq!(
            err.to_string(),
            "pull manifest localhost:5000/x:latest: manifest unknown (404 MANIFEST_UNKNOWN)"
        );
    }
}
