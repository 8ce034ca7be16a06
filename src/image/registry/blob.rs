//! Blobs, both ways: a download streamed to its writer through a hash, and an upload in
//! one `PUT` or in `PATCH` chunks, skipped by the caller when `HEAD` says it is there.

use std::io::{self, Read, Write};

use ureq::Body;
use ureq::http::{Method, Response, StatusCode, header};

use super::request::{
    Call, Payload, check_repository, header_value, pull_scope, push_scope, resolve_location,
    with_query,
};
use super::{Client, Op, RegistryError};
use crate::image::digest::{Digest, Hasher};

/// How much of a download or an upload has passed, in bytes so far.
pub type Progress<'a> = &'a mut dyn FnMut(u64);

impl Client {
    // ANCHOR: get_blob
    /// `GET /v2/REPOSITORY/blobs/DIGEST` into `out`, hashed on the way: a blob whose
    /// bytes do not hash to `digest` is an error, and what was written of it is the
    /// caller's to remove. `progress` is told the bytes so far. Returns the size.
    pub fn get_blob(
        &mut self,
        repository: &str,
        digest: &Digest,
        out: &mut dyn Write,
        progress: Progress<'_>,
    ) -> Result<u64, RegistryError> {
        let op = Op::new(
            "pull blob",
            format!("{}/{repository}@{digest}", self.registry),
        );
        check_repository(&op, repository)?;
        let call = Call::new(
            Method::GET,
            format!("/v2/{repository}/blobs/{digest}"),
            Some(pull_scope(repository)),
        );
        // Redirects (to a CDN, say) are followed, without our credentials.
        let mut response = self.send(&op, call)?;
        if response.status() != StatusCode::OK {
            return Err(self.status_error(&op, response));
        }
        copy_verified(&mut response.body_mut().as_reader(), out, digest, progress).map_err(
            |failure| match failure {
                CopyFailure::Read(source) => op.receive(source),
                CopyFailure::Write(source) => RegistryError::Write {
                    operation: op.name,
                    target: op.target.clone(),
                    source,
                },
                CopyFailure::Mismatch(actual) => op.mismatch(actual),
            },
        )
    }
    // ANCHOR_END: get_blob

    /// `HEAD /v2/REPOSITORY/blobs/DIGEST`: whether the registry has the blob already, so
    /// a push can skip it.
    pub fn has_blob(&mut self, repository: &str, digest: &Digest) -> Result<bool, RegistryError> {
        let op = Op::new(
            "check blob",
            format!("{}/{repository}@{digest}", self.registry),
        );
        check_repository(&op, repository)?;
        let call = Call::new(
            Method::HEAD,
            format!("/v2/{repository}/blobs/{digest}"),
            Some(pull_scope(repository)),
        );
        let response = self.send(&op, call)?;
        match response.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.status_error(&op, response)),
        }
    }

    // ANCHOR: put_blob
    /// Upload `size` bytes read from `data` as the blob `digest`: `POST` opens an upload,
    /// then one `PUT ?digest=` carries the bytes, or with a chunk size each chunk goes in
    /// a `PATCH` and an empty `PUT` closes it. Each answer's `Location` is the next URL.
    /// `progress` is told the bytes sent so far. On failure the upload is cancelled.
    pub fn put_blob(
        &mut self,
        repository: &str,
        digest: &Digest,
        size: u64,
        data: &mut dyn Read,
        progress: Progress<'_>,
    ) -> Result<(), RegistryError> {
        let op = Op::new(
            "push blob",
            format!("{}/{repository}@{digest}", self.registry),
        );
        check_repository(&op, repository)?;
        let scope = push_scope(repository);
        let start = format!("/v2/{repository}/blobs/uploads/");
        let call = Call::new(Method::POST, start.clone(), Some(scope.clone()));
        let response = self.send(&op, call)?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(self.status_error(&op, response));
        }
        let request = format!("{}{start}", self.base.clone().unwrap_or_default());
        let mut location = location(&op, &response, &request)?;
        let mut source = Source {
            inner: data,
            limit: 0,
            sent: 0,
            size,
            hasher: Hasher::new(),
            progress,
            failed: None,
        };
        let result = self.upload(&op, &scope, &mut location, &mut source, digest);
        if result.is_err() {
            // Best effort, and the upload's own error is what the caller needs: a
            // registry also expires abandoned uploads by itself.
            let mut cancel = Call::new(Method::DELETE, location, None);
            let _ = self.run(&mut cancel, self.authorization(Some(&scope)).as_deref());
        }
        result
    }
    // ANCHOR_END: put_blob

    /// The upload's requests after the `POST`; `location` follows each answer.
    fn upload(
        &mut self,
        op: &Op,
        scope: &str,
        location: &mut String,
        source: &mut Source<'_>,
        digest: &Digest,
    ) -> Result<(), RegistryError> {
        let size = source.size;
        let chunk_size = self.chunk_size.unwrap_or(u64::MAX);
        let monolithic = self.chunk_size.is_none() || size <= chunk_size;
        if monolithic {
            source.limit = size;
            let call = Call::new(
                Method::PUT,
                with_query(location, "digest", &digest.to_string()),
                Some(scope.to_string()),
            )
            .header("content-type", "application/octet-stream")
            .payload(Payload::Stream(source, size));
            let response = self.send(op, call);
            let response = source.checked(op, response)?;
            if response.status() != StatusCode::CREATED {
                return Err(self.status_error(op, response));
            }
            return source.verify(op, digest);
        }
        while source.sent < size {
            let (offset, len) = (source.sent, chunk_size.min(size - source.sent));
            source.limit = len;
            let call = Call::new(Method::PATCH, location.clone(), Some(scope.to_string()))
                .header("content-type", "application/octet-stream")
                .header("content-range", format!("{offset}-{}", offset + len - 1))
                .payload(Payload::Stream(source, len));
            let response = self.send(op, call);
            let response = source.checked(op, response)?;
            if response.status() != StatusCode::ACCEPTED {
                return Err(self.status_error(op, response));
            }
            // The registry says what it holds: `0-LAST`, inclusive.
            if let Some(range) = header_value(&response, "range")
                && range != format!("0-{}", offset + len - 1)
            {
                return Err(op.protocol(format!(
                    "after {} bytes the registry holds {range:?}",
                    offset + len
                )));
            }
            *location = self::location(op, &response, location)?;
        }
        // Only bytes that hash right are committed under the digest.
        source.verify(op, digest)?;
        let call = Call::new(
            Method::PUT,
            with_query(location, "digest", &digest.to_string()),
            Some(scope.to_string()),
        );
        let response = self.send(op, call)?;
        if response.status() != StatusCode::CREATED {
            return Err(self.status_error(op, response));
        }
        Ok(())
    }
}

/// The absolute URL in a response's `Location`, resolved against `request`.
fn location(op: &Op, response: &Response<Body>, request: &str) -> Result<String, RegistryError> {
    let location = header_value(response, header::LOCATION)
        .ok_or_else(|| op.protocol("the registry's answer has no Location".into()))?;
    Ok(resolve_location(request, &location))
}

/// Why a verified copy stopped.
#[derive(Debug)]
enum CopyFailure {
    Read(io::Error),
    Write(io::Error),
    Mismatch(Digest),
}

/// Copy `reader` to `out`, hashing; the bytes must hash to `expected`.
fn copy_verified(
    reader: &mut dyn Read,
    out: &mut dyn Write,
    expected: &Digest,
    progress: Progress<'_>,
) -> Result<u64, CopyFailure> {
    let mut hasher = Hasher::new();
    let mut buffer = vec![0u8; 64 << 10];
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyFailure::Read(e)),
        };
        out.write_all(&buffer[..n]).map_err(CopyFailure::Write)?;
        hasher.update(&buffer[..n]);
        progress(hasher.len());
    }
    out.flush().map_err(CopyFailure::Write)?;
    let len = hasher.len();
    let actual = hasher.finish();
    if actual != *expected {
        return Err(CopyFailure::Mismatch(actual));
    }
    Ok(len)
}

/// The data of an upload, handed to one request at a time (`limit` bytes each), hashed
/// and counted on the way. Its own read failures are kept, to be told apart from the
/// network's.
struct Source<'a> {
    inner: &'a mut dyn Read,
    limit: u64,
    sent: u64,
    size: u64,
    hasher: Hasher,
    progress: Progress<'a>,
    failed: Option<io::Error>,
}

impl Read for Source<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.limit == 0 {
            return Ok(0);
        }
        let max = usize::try_from(self.limit)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        match self.inner.read(&mut buf[..max]) {
            Ok(0) => {
                let message = format!("it ended after {} of {} bytes", self.sent, self.size);
                self.failed = Some(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    message.clone(),
                ));
                Err(io::Error::new(io::ErrorKind::UnexpectedEof, message))
            }
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                self.sent += n as u64;
                self.limit -= n as u64;
                (self.progress)(self.sent);
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                self.failed = Some(io::Error::new(e.kind(), e.to_string()));
                Err(e)
            }
        }
    }
}

impl Source<'_> {
    /// A request's result, with a failure of ours reported as ours.
    fn checked(
        &mut self,
        op: &Op,
        result: Result<Response<Body>, RegistryError>,
    ) -> Result<Response<Body>, RegistryError> {
        match (result, self.failed.take()) {
            (_, Some(source)) => Err(RegistryError::ReadData {
                operation: op.name,
                target: op.target.clone(),
                source,
            }),
            (result, None) => result,
        }
    }

    /// Everything was sent, and it hashes to `digest`.
    fn verify(&mut self, op: &Op, digest: &Digest) -> Result<(), RegistryError> {
        let hasher = std::mem::take(&mut self.hasher);
        let actual = hasher.finish();
        if actual != *digest {
            return Err(op.mismatch(actual));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_that_does_not_hash_to_its_digest_is_refused_after_streaming() {
        let expected = Digest::of(b"the real layer");
        let mut out = Vec::new();
        let mut seen = Vec::new();
        let failure = copy_verified(&mut &b"a forged layer"[..], &mut out, &expected, &mut |n| {
            seen.push(n)
        })
        .expect_err("forged");
        assert!(matches!(failure, CopyFailure::Mismatch(d) if d == Digest::of(b"a forged layer")));
        assert_eq!(seen.last(), Some(&14));

        let mut out = Vec::new();
        let len = copy_verified(
            &mut &b"the real layer"[..],
            &mut out,
            &expected,
            &mut |_| {},
        )
        .expect("genuine");
        assert_eq!((len, out.as_slice()), (14, &b"the real layer"[..]));
    }

    #[test]
    fn upload_data_that_ends_early_is_the_data_s_fault() {
        let mut data = &b"short"[..];
        let mut source = Source {
            inner: &mut data,
            limit: 10,
            sent: 0,
            size: 10,
            hasher: Hasher::new(),
            progress: &mut |_| {},
            failed: None,
        };
        let mut sink = Vec::new();
        assert!(io::copy(&mut source, &mut sink).is_err());
        let op = Op {
            name: "push blob",
            target: "r/x@d".to_string(),
        };
        let err = source
            .checked(&op, Ok(Response::new(Body::builder().data(""))))
            .expect_err("short");
        assert_eq!(
            err.to_string(),
            "push blob r/x@d: read the data: it ended after 5 of 10 bytes"
        );
    }
}
