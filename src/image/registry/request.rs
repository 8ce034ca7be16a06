//! One request to the registry: built as a [`Call`], sent with the authorization its
//! scope has, and sent again once after answering a `401`'s challenge.

use std::io::Read;

use serde::Deserialize;
use ureq::http::{self, Method, Response, StatusCode, header};
use ureq::{Body, SendBody};

use super::auth::{self, Challenge, Credentials};
use super::{Client, Op, RegistryError};
use crate::image::digest::Digest;
use crate::image::reference::{validate_repository, validate_tag};

/// The most read of an error body or a token answer.
pub(super) const MAX_SMALL_BODY: u64 = 64 << 10;

/// The body of a request.
pub(super) enum Payload<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// Streamed, so it cannot be sent twice: a 401 is not retried.
    Stream(&'a mut dyn Read, u64),
}

/// One request, before it is sent (and perhaps sent again with credentials).
pub(super) struct Call<'a> {
    method: Method,
    /// A path under the registry (`/v2/…`) or an absolute URL (an upload's `Location`).
    url: String,
    headers: Vec<(&'static str, String)>,
    payload: Payload<'a>,
    /// The token scope this request needs: `repository:NAME:pull`.
    scope: Option<String>,
}

impl<'a> Call<'a> {
    pub(super) fn new(method: Method, url: String, scope: Option<String>) -> Call<'a> {
        Call {
            method,
            url,
            headers: Vec::new(),
            payload: Payload::Empty,
            scope,
        }
    }

    pub(super) fn header(mut self, name: &'static str, value: impl Into<String>) -> Call<'a> {
        self.headers.push((name, value.into()));
        self
    }

    pub(super) fn payload(mut self, payload: Payload<'a>) -> Call<'a> {
        self.payload = payload;
        self
    }
}

impl Client {
    // ANCHOR: send
    /// Send `call`, with the authorization its scope has; on a `401`, answer the
    /// challenge (get a token, or use Basic credentials) and send it once more.
    pub(super) fn send(
        &mut self,
        op: &Op,
        mut call: Call<'_>,
    ) -> Result<Response<Body>, RegistryError> {
        let base = self.base()?;
        if call.url.starts_with('/') {
            call.url = format!("{base}{}", call.url);
        }
        // Credentials go to the registry only, never to wherever a Location points.
        let ours = call.url == base || call.url.starts_with(&format!("{base}/"));
        let authorization = ours
            .then(|| self.authorization(call.scope.as_deref()))
            .flatten();
        let response = self
            .run(&mut call, authorization.as_deref())
            .map_err(|source| op.transport(source))?;
        let replayable = !matches!(call.payload, Payload::Stream(..));
        if response.status() != StatusCode::UNAUTHORIZED || !ours || !replayable {
            return Ok(response);
        }
        let challenges: Vec<Challenge> = response
            .headers()
            .get_all(http::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(auth::parse_challenges)
            .collect();
        if !self.answer(op, &challenges, call.scope.as_deref())? {
            return Ok(response);
        }
        let authorization = self.authorization(call.scope.as_deref());
        self.run(&mut call, authorization.as_deref())
            .map_err(|source| op.transport(source))
    }
    // ANCHOR_END: send

    /// Send `call` once, as it is.
    pub(super) fn run(
        &self,
        call: &mut Call<'_>,
        authorization: Option<&str>,
    ) -> Result<Response<Body>, ureq::Error> {
        let mut request = http::Request::builder()
            .method(call.method.clone())
            .uri(&call.url);
        for (name, value) in &call.headers {
            request = request.header(*name, value);
        }
        if let Some(authorization) = authorization {
            request = request.header(http::header::AUTHORIZATION, authorization);
        }
        match &mut call.payload {
            Payload::Empty if call.method == Method::GET || call.method == Method::HEAD => {
                self.agent.run(request.body(())?)
            }
            Payload::Empty => self
                .agent
                .run(request.header(http::header::CONTENT_LENGTH, 0).body(())?),
            Payload::Bytes(bytes) => self.agent.run(request.body(*bytes)?),
            Payload::Stream(reader, len) => {
                let request = request.header(http::header::CONTENT_LENGTH, *len);
                self.agent
                    .run(request.body(SendBody::from_reader(*reader))?)
            }
        }
    }

    /// The `Authorization` value for `scope`: its token (a push token serves a pull
    /// too), else Basic credentials if the registry asked for them.
    pub(super) fn authorization(&self, scope: Option<&str>) -> Option<String> {
        let scope = scope.unwrap_or("");
        let push_scope = scope
            .strip_suffix(":pull")
            .map(|repository| format!("{repository}:pull,push"));
        let token = self
            .tokens
            .get(scope)
            .or_else(|| push_scope.and_then(|s| self.tokens.get(&s)));
        if let Some(token) = token {
            return Some(format!("Bearer {token}"));
        }
        if self.basic
            && let Some(Some((credentials, _))) = &self.credentials
        {
            return Some(credentials.basic_header());
        }
        None
    }

    /// The user's credentials for this registry, looked up once.
    pub(super) fn credentials(&mut self) -> Result<Option<&Credentials>, RegistryError> {
        if self.credentials.is_none() {
            self.credentials = Some(self.auth_files.lookup(&self.registry)?);
        }
        Ok(self
            .credentials
            .as_ref()
            .and_then(|found| found.as_ref().map(|(credentials, _)| credentials)))
    }

    // ANCHOR: answer
    /// Answer a `401`'s challenges: a Bearer one with a token for `scope` (or the
    /// challenge's own), a Basic one with the user's credentials. Whether there is now
    /// something new to retry with.
    pub(super) fn answer(
        &mut self,
        op: &Op,
        challenges: &[Challenge],
        scope: Option<&str>,
    ) -> Result<bool, RegistryError> {
        if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
            let scope = scope.or(bearer.param("scope")).unwrap_or("").to_string();
            let token = self.fetch_token(op, bearer, &scope)?;
            self.tokens.insert(scope, token);
            return Ok(true);
        }
        if challenges.iter().any(|c| c.scheme == "basic") && !self.basic {
            self.basic = self.credentials()?.is_some();
            return Ok(self.basic);
        }
        Ok(false)
    }
    // ANCHOR_END: answer

    /// `GET realm?service=…&scope=…`, with the user's credentials if there are any.
    pub(super) fn fetch_token(
        &mut self,
        op: &Op,
        challenge: &Challenge,
        scope: &str,
    ) -> Result<String, RegistryError> {
        let token_error = |realm: &str, reason: String| RegistryError::Token {
            operation: op.name,
            target: op.target.clone(),
            realm: realm.to_string(),
            reason,
        };
        let Some(realm) = challenge.param("realm").map(str::to_string) else {
            return Err(op.protocol("its Bearer challenge names no realm".to_string()));
        };
        let mut url = realm.clone();
        if let Some(service) = challenge.param("service") {
            url = with_query(&url, "service", service);
        }
        if !scope.is_empty() {
            url = with_query(&url, "scope", scope);
        }
        let authorization = self.credentials()?.map(Credentials::basic_header);
        let mut call = Call::new(Method::GET, url, None);
        let mut response = self
            .run(&mut call, authorization.as_deref())
            .map_err(|source| token_error(&realm, source.to_string()))?;
        if response.status() != StatusCode::OK {
            let (message, code) = error_body(&mut response);
            let code = code.map(|code| format!(" {code}")).unwrap_or_default();
            return Err(token_error(
                &realm,
                format!("{message} ({}{code})", response.status().as_u16()),
            ));
        }
        let mut body = Vec::new();
        response
            .body_mut()
            .as_reader()
            .take(MAX_SMALL_BODY)
            .read_to_end(&mut body)
            .map_err(|e| token_error(&realm, e.to_string()))?;
        auth::token_from_json(&body).map_err(|reason| token_error(&realm, reason))
    }

    /// The error for an unexpected status: the registry's JSON errors if it sent some;
    /// for a `401`, what credentials there were.
    pub(super) fn status_error(&self, op: &Op, mut response: Response<Body>) -> RegistryError {
        let status = response.status();
        let (mut message, code) = error_body(&mut response);
        if status == StatusCode::UNAUTHORIZED {
            match &self.credentials {
                Some(Some((_, path))) => message.push_str(&format!(
                    "; the registry refused the credentials for {} from {}",
                    self.registry,
                    path.display()
                )),
                _ => message.push_str(&format!(
                    "; no credentials for {} in {}",
                    self.registry,
                    self.auth_files.describe()
                )),
            }
        }
        RegistryError::Status {
            operation: op.name,
            target: op.target.clone(),
            status: status.as_u16(),
            code,
            message,
        }
    }
}

/// The repository must be a valid name: it goes into the URL's path.
pub(super) fn check_repository(op: &Op, repository: &str) -> Result<(), RegistryError> {
    validate_repository(repository).map_err(|reason| op.bad_name(reason))
}

/// The repository must be a valid name and the reference a tag or a digest: they go
/// into the URL's path. The digest, if it is one.
pub(super) fn check_names(
    op: &Op,
    repository: &str,
    reference: &str,
) -> Result<Option<Digest>, RegistryError> {
    check_repository(op, repository)?;
    if reference.contains(':') {
        return reference
            .parse::<Digest>()
            .map(Some)
            .map_err(|e| op.bad_name(e.to_string()));
    }
    validate_tag(reference).map_err(|reason| op.bad_name(reason))?;
    Ok(None)
}

pub(super) fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

pub(super) fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// A response header as text, if present and printable.
pub(super) fn header_value(
    response: &Response<Body>,
    name: impl header::AsHeaderName,
) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
}

// ANCHOR: resolve_location
/// `location` (absolute, `//host/…`, `/path` or relative) as an absolute URL, against
/// the absolute URL `request` it answered (RFC 3986 §5.2, without dot segments:
/// registries send absolute URLs or absolute paths).
pub(super) fn resolve_location(request: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    let (scheme, rest) = request.split_once("://").unwrap_or(("https", request));
    if let Some(network_path) = location.strip_prefix("//") {
        return format!("{scheme}://{network_path}");
    }
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let origin = format!("{scheme}://{}", &rest[..authority_end]);
    if location.starts_with('/') {
        return format!("{origin}{location}");
    }
    let path = rest[authority_end..].split('?').next().unwrap_or("");
    let directory = path.rfind('/').map_or("/", |end| &path[..=end]);
    format!("{origin}{directory}{location}")
}
// ANCHOR_END: resolve_location

/// `url` with `key=value` added to its query, `value` percent-encoded.
pub(super) fn with_query(url: &str, key: &str, value: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("{url}{separator}{key}={encoded}")
}

/// The message and code of an error answer: the registry's JSON `errors` if it sent
/// some, else the status's name.
pub(super) fn error_body(response: &mut Response<Body>) -> (String, Option<String>) {
    let mut body = Vec::new();
    // A body that fails to arrive only means there are no details: the status is the
    // error being reported.
    let _ = response
        .body_mut()
        .as_reader()
        .take(MAX_SMALL_BODY)
        .read_to_end(&mut body);
    parse_error_body(response.status(), &body)
}

/// See [`error_body`].
fn parse_error_body(status: StatusCode, body: &[u8]) -> (String, Option<String>) {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let one_line = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let errors = serde_json::from_slice::<Errors>(body)
        .map(|e| e.errors)
        .unwrap_or_default();
    if errors.is_empty() {
        let reason = status.canonical_reason().unwrap_or("error");
        return (reason.to_lowercase(), None);
    }
    let messages: Vec<String> = errors
        .iter()
        .map(|e| match e.message.is_empty() {
            true => e.code.to_lowercase().replace('_', " "),
            false => one_line(&e.message),
        })
        .collect();
    let codes: Vec<String> = errors
        .iter()
        .filter(|e| !e.code.is_empty())
        .map(|e| one_line(&e.code))
        .collect();
    let code = (!codes.is_empty()).then(|| codes.join(", "));
    (messages.join("; "), code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_against_the_request_they_answered() {
        let request = "http://127.0.0.1:5000/v2/a/b/blobs/uploads/";
        for (location, resolved) in [
            (
                "http://127.0.0.1:5000/v2/a/b/blobs/uploads/u1?_state=x",
                "http://127.0.0.1:5000/v2/a/b/blobs/uploads/u1?_state=x",
            ),
            (
                "/v2/a/b/blobs/uploads/u2?_state=y",
                "http://127.0.0.1:5000/v2/a/b/blobs/uploads/u2?_state=y",
            ),
            ("//other:1/x", "http://other:1/x"),
            ("u3", "http://127.0.0.1:5000/v2/a/b/blobs/uploads/u3"),
        ] {
            assert_eq!(resolve_location(request, location), resolved, "{location}");
        }
        assert_eq!(
            resolve_location("https://r.io/v2/x/blobs/uploads/u1?s=1", "u2?s=2"),
            "https://r.io/v2/x/blobs/uploads/u2?s=2"
        );
        assert_eq!(resolve_location("https://r.io", "u"), "https://r.io/u");
    }

    #[test]
    fn the_digest_is_added_to_the_upload_url_s_query_encoded() {
        let digest = Digest::of(b"");
        assert_eq!(
            with_query(
                "http://r/v2/x/blobs/uploads/u?_state=a%2Fb",
                "digest",
                &digest.to_string()
            ),
            format!(
                "http://r/v2/x/blobs/uploads/u?_state=a%2Fb&digest=sha256%3A{}",
                digest.hex()
            )
        );
        assert_eq!(
            with_query("https://auth/token", "scope", "repository:a/b:pull,push"),
            "https://auth/token?scope=repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }

    #[test]
    fn a_registry_error_body_gives_its_message_and_code() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#;
        assert_eq!(
            parse_error_body(StatusCode::NOT_FOUND, body),
            (
                "manifest unknown".to_string(),
                Some("MANIFEST_UNKNOWN".to_string())
            )
        );
        let two = br#"{"errors":[{"code":"DENIED","message":"no\nway"},{"code":"UNAUTHORIZED"}]}"#;
        assert_eq!(
            parse_error_body(StatusCode::FORBIDDEN, two),
            (
                "no way; unauthorized".to_string(),
                Some("DENIED, UNAUTHORIZED".to_string())
            )
        );
        assert_eq!(
            parse_error_body(StatusCode::BAD_GATEWAY, b"<html>"),
            ("bad gateway".to_string(), None)
        );
    }

    #[test]
    fn names_that_would_bend_the_url_are_refused() {
        let op = Op {
            name: "pull manifest",
            target: "r/x".to_string(),
        };
        assert!(check_names(&op, "../x", "latest").is_err());
        assert!(check_names(&op, "x", "../../v2").is_err());
        assert!(check_names(&op, "x", "sha256:zz").is_err());
        assert_eq!(check_names(&op, "a/b", "v1").expect("valid"), None);
        let digest = Digest::of(b"");
        assert_eq!(
            check_names(&op, "a/b", &digest.to_string()).expect("valid"),
            Some(digest)
        );
    }
}
