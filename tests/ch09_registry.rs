//! Chapter 9's registry client against a real registry: Debian's `docker-registry`,
//! started on 127.0.0.1 at a free port for each test, with skopeo as the reference client
//! on the other side. Nothing here needs root.

mod common;

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use nutshell::image::digest::Digest;
use nutshell::image::registry::{Client, OCI_MANIFEST, RegistryError, RegistryOptions};

use common::registry::{Registry, RegistryAuth, TOKEN_SERVICE, TokenServer, skopeo};

/// A tiny OCI image made here: one gzipped layer holding `/hello`, its config and its
/// manifest, each as the exact bytes that are hashed. (A gzipped layer, as real images
/// have: skopeo would compress a plain tar on its way to a registry, changing digests.)
struct TinyImage {
    layer: Vec<u8>,
    config: Vec<u8>,
    manifest: Vec<u8>,
}

impl TinyImage {
    fn new(greeting: &str) -> TinyImage {
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_size(greeting.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, "hello", greeting.as_bytes())
            .expect("tar the layer");
        let tar = tar.into_inner().expect("finish the layer");
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gzip.write_all(&tar).expect("gzip the layer");
        let layer = gzip.finish().expect("finish the gzip");
        let config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/cat", "/hello"]},
            "rootfs": {"type": "layers", "diff_ids": [Digest::of(&tar).to_string()]},
        })
        .to_string()
        .into_bytes();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": Digest::of(&config).to_string(),
                "size": config.len(),
            },
            "layers": [{
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": Digest::of(&layer).to_string(),
                "size": layer.len(),
            }],
        })
        .to_string()
        .into_bytes();
        TinyImage {
            layer,
            config,
            manifest,
        }
    }

    fn digest(&self) -> Digest {
        Digest::of(&self.manifest)
    }

    /// The blobs a push sends before the manifest.
    fn blobs(&self) -> [&[u8]; 2] {
        [&self.config, &self.layer]
    }

    /// Write it as an OCI image layout in `dir`, its manifest tagged `tag`.
    fn write_layout(&self, dir: &Path, tag: &str) {
        let blobs = dir.join("blobs/sha256");
        fs::create_dir_all(&blobs).expect("make blobs/sha256");
        for bytes in [&self.layer, &self.config, &self.manifest] {
            fs::write(blobs.join(Digest::of(bytes).hex()), bytes).expect("write a blob");
        }
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("write oci-layout");
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": OCI_MANIFEST,
                "digest": self.digest().to_string(),
                "size": self.manifest.len(),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }],
        });
        fs::write(dir.join("index.json"), index.to_string()).expect("write index.json");
    }

    /// Push it with `client` as `repository:tag`, skipping blobs already there.
    fn push(&self, client: &mut Client, repository: &str, tag: &str) {
        for blob in self.blobs() {
            let digest = Digest::of(blob);
            if !client
                .has_blob(repository, &digest)
                .expect("check the blob")
            {
                client
                    .put_blob(
                        repository,
                        &digest,
                        blob.len() as u64,
                        &mut &blob[..],
                        &mut |_| {},
                    )
                    .expect("push the blob");
            }
        }
        let pushed = client
            .put_manifest(repository, tag, OCI_MANIFEST, &self.manifest)
            .expect("push the manifest");
        assert_eq!(pushed, self.digest());
    }
}

/// Options for a test: an auth file of the test's own (so the machine's is never read),
/// and a timeout that fails a stuck test quickly.
fn options(auth_file: &Path) -> RegistryOptions {
    RegistryOptions {
        auth_file: Some(auth_file.to_path_buf()),
        timeout: Duration::from_secs(20),
        ..RegistryOptions::default()
    }
}

/// An auth file with `entries` (`host`, `user`, `password`).
fn auth_file(dir: &Path, entries: &[(&str, &str, &str)]) -> std::path::PathBuf {
    let auths: serde_json::Map<String, serde_json::Value> = entries
        .iter()
        .map(|(host, user, password)| {
            let auth = BASE64.encode(format!("{user}:{password}"));
            (host.to_string(), serde_json::json!({ "auth": auth }))
        })
        .collect();
    let path = dir.join("auth.json");
    fs::write(&path, serde_json::json!({ "auths": auths }).to_string()).expect("auth file");
    path
}

/// A client for `registry` with an empty auth file in `dir`.
fn anonymous_client(registry: &Registry, dir: &Path) -> Client {
    Client::new(&registry.address, &options(&auth_file(dir, &[]))).expect("client")
}

/// Fetch blob `digest` into memory, checking the progress reports.
fn fetch_blob(client: &mut Client, repository: &str, digest: &Digest) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut last = 0;
    let size = client
        .get_blob(repository, digest, &mut bytes, &mut |so_far| {
            assert!(so_far >= last, "progress went back");
            last = so_far;
        })
        .expect("fetch the blob");
    assert_eq!((size, last), (bytes.len() as u64, bytes.len() as u64));
    bytes
}

#[test]
fn an_image_pushed_by_skopeo_is_pulled_by_tag_then_by_digest() {
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("temp dir");
    let image = TinyImage::new("hello from skopeo\n");
    let layout = work.path().join("layout");
    image.write_layout(&layout, "v1");
    skopeo(&[
        "--insecure-policy",
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", layout.display()),
        &registry.docker_url("test/img:v1"),
    ]);

    let mut client = anonymous_client(&registry, work.path());
    client.ping().expect("ping");
    let by_tag = client
        .get_manifest("test/img", "v1")
        .expect("manifest by tag");
    assert_eq!(by_tag.media_type, OCI_MANIFEST);
    assert_eq!(
        by_tag.bytes, image.manifest,
        "skopeo kept the manifest's bytes"
    );
    assert_eq!(by_tag.digest, image.digest());
    let by_digest = client
        .get_manifest("test/img", &by_tag.digest.to_string())
        .expect("manifest by digest");
    assert_eq!(by_digest, by_tag);

    let manifest: serde_json::Value = serde_json::from_slice(&by_tag.bytes).expect("json");
    let config: Digest = manifest["config"]["digest"]
        .as_str()
        .expect("config digest")
        .parse()
        .expect("a digest");
    let layer: Digest = manifest["layers"][0]["digest"]
        .as_str()
        .expect("layer digest")
        .parse()
        .expect("a digest");
    assert_eq!(fetch_blob(&mut client, "test/img", &config), image.config);
    assert_eq!(fetch_blob(&mut client, "test/img", &layer), image.layer);
}

#[test]
fn an_image_pushed_by_the_client_is_read_back_by_skopeo() {
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("temp dir");
    let image = TinyImage::new("hello from nutshell\n");
    let mut client = anonymous_client(&registry, work.path());
    for blob in image.blobs() {
        let digest = Digest::of(blob);
        assert!(!client.has_blob("test/pushed", &digest).expect("check"));
        let mut sent = 0;
        client
            .put_blob(
                "test/pushed",
                &digest,
                blob.len() as u64,
                &mut &blob[..],
                &mut |n| sent = n,
            )
            .expect("push the blob");
        assert_eq!(sent, blob.len() as u64);
        assert!(client.has_blob("test/pushed", &digest).expect("check"));
    }
    let digest = client
        .put_manifest("test/pushed", "v1", OCI_MANIFEST, &image.manifest)
        .expect("push the manifest");
    assert_eq!(digest, image.digest());

    let inspect = skopeo(&[
        "inspect",
        "--tls-verify=false",
        &registry.docker_url("test/pushed:v1"),
    ]);
    let inspect: serde_json::Value = serde_json::from_slice(&inspect.stdout).expect("json");
    assert_eq!(inspect["Digest"], image.digest().to_string());
    assert_eq!(
        inspect["Layers"],
        serde_json::json!([Digest::of(&image.layer).to_string()])
    );

    let copied = work.path().join("copied");
    skopeo(&[
        "--insecure-policy",
        "copy",
        "--src-tls-verify=false",
        &registry.docker_url("test/pushed:v1"),
        &format!("oci:{}:v1", copied.display()),
    ]);
    for bytes in [&image.layer, &image.config, &image.manifest] {
        let path = copied.join("blobs/sha256").join(Digest::of(bytes).hex());
        assert_eq!(
            &fs::read(&path).expect("a copied blob"),
            bytes,
            "{}",
            path.display()
        );
    }
}

#[test]
fn a_chunked_upload_is_put_together_by_the_registry() {
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("temp dir");
    let options = RegistryOptions {
        chunk_size: Some(7),
        ..options(&auth_file(work.path(), &[]))
    };
    let mut client = Client::new(&registry.address, &options).expect("client");
    // Chunks of 7 that do not come out even, and that do.
    for len in [100, 70, 3, 0] {
        let blob: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
        let digest = Digest::of(&blob);
        let mut reports = Vec::new();
        client
            .put_blob("test/chunks", &digest, len, &mut &blob[..], &mut |n| {
                reports.push(n)
            })
            .expect("chunked push");
        assert_eq!(reports.last().copied().unwrap_or(0), len);
        assert!(client.has_blob("test/chunks", &digest).expect("check"));
        assert_eq!(fetch_blob(&mut client, "test/chunks", &digest), blob);
    }
}

#[test]
fn data_that_does_not_hash_to_its_digest_is_not_committed() {
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("temp dir");
    let claimed = Digest::of(b"what was promised");
    for chunk_size in [None, Some(4)] {
        let options = RegistryOptions {
            chunk_size,
            ..options(&auth_file(work.path(), &[]))
        };
        let mut client = Client::new(&registry.address, &options).expect("client");
        let data = b"what was really sent";
        let err = client
            .put_blob(
                "test/lies",
                &claimed,
                data.len() as u64,
                &mut &data[..],
                &mut |_| {},
            )
            .expect_err("a lie");
        let message = err.to_string();
        let prefix = format!("push blob {}/test/lies@{claimed}: ", registry.address);
        assert!(message.starts_with(&prefix), "{message}");
        // In one PUT the registry checks the digest; in chunks the client does, before
        // the closing PUT would commit them.
        let why = match chunk_size {
            None => "provided digest did not match uploaded content (400 DIGEST_INVALID)".into(),
            Some(_) => format!("the content's digest is {}, refused", Digest::of(data)),
        };
        assert_eq!(&message[prefix.len()..], why);
        assert!(
            !client.has_blob("test/lies", &claimed).expect("check"),
            "{chunk_size:?}"
        );
    }
}

#[test]
fn a_missing_manifest_or_blob_is_one_line_with_the_registry_s_code() {
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("temp dir");
    let mut client = anonymous_client(&registry, work.path());
    TinyImage::new("here\n").push(&mut client, "test/img", "v1");

    let err = client
        .get_manifest("test/img", "nope")
        .expect_err("no such tag");
    assert_eq!(
        err.to_string(),
        format!(
            "pull manifest {}/test/img:nope: manifest unknown (404 MANIFEST_UNKNOWN)",
            registry.address
        )
    );
    assert!(
        matches!(err, RegistryError::Status { status: 404, ref code, .. } if code.as_deref() == Some("MANIFEST_UNKNOWN"))
    );

    let missing = Digest::of(b"never pushed");
    let err = client
        .get_blob("test/img", &missing, &mut Vec::new(), &mut |_| {})
        .expect_err("no such blob");
    assert_eq!(
        err.to_string(),
        format!(
            "pull blob {}/test/img@{missing}: blob unknown to registry (404 BLOB_UNKNOWN)",
            registry.address
        )
    );
}

#[test]
fn a_blob_the_registry_serves_corrupted_is_refused() {
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("temp dir");
    let mut client = anonymous_client(&registry, work.path());
    let blob = b"the genuine layer bytes".to_vec();
    let digest = Digest::of(&blob);
    client
        .put_blob(
            "test/img",
            &digest,
            blob.len() as u64,
            &mut &blob[..],
            &mut |_| {},
        )
        .expect("push");
    // Same length, other bytes: the registry serves its file without rehashing it.
    let forged = b"the forged! layer bytes".to_vec();
    assert_eq!(forged.len(), blob.len());
    fs::write(registry.blob_data(digest.hex()), &forged).expect("corrupt the stored blob");

    let mut out = Vec::new();
    let err = client
        .get_blob("test/img", &digest, &mut out, &mut |_| {})
        .expect_err("corrupted");
    assert_eq!(
        err.to_string(),
        format!(
            "pull blob {}/test/img@{digest}: the content's digest is {}, refused",
            registry.address,
            Digest::of(&forged)
        )
    );
    assert_eq!(
        out, forged,
        "what arrived was written: the caller removes it"
    );
}

#[test]
fn a_registry_that_is_not_loopback_gets_https_only_and_the_error_names_the_flag() {
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("temp dir");
    // As a remote registry is treated: verification on, no plain HTTP.
    let verify = RegistryOptions {
        tls_verify: Some(true),
        ..options(&auth_file(work.path(), &[]))
    };
    let mut client = Client::new(&registry.address, &verify).expect("client");
    let err = client.ping().expect_err("plain http refused");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "connect to registry {} at https://{}/v2/: ",
            registry.address, registry.address
        )),
        "{message}"
    );
    assert!(message.ends_with("pass --tls-verify=false"), "{message}");
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn basic_credentials_come_from_the_auth_file() {
    let registry = Registry::start_with(RegistryAuth::Htpasswd {
        user: "tester".to_string(),
        password: "s3cret".to_string(),
    });
    let work = tempfile::tempdir().expect("temp dir");
    let image = TinyImage::new("behind a password\n");

    let none = auth_file(work.path(), &[("quay.io", "someone", "else")]);
    let mut client = Client::new(&registry.address, &options(&none)).expect("client");
    client.ping().expect("a 401 ping is an answer");
    let err = client
        .get_manifest("test/img", "v1")
        .expect_err("anonymous");
    assert_eq!(
        err.to_string(),
        format!(
            "pull manifest {0}/test/img:v1: authentication required; no credentials for {0} in {1} (401 UNAUTHORIZED)",
            registry.address,
            none.display()
        )
    );

    let wrong = auth_file(work.path(), &[(&registry.address, "tester", "guess")]);
    let mut client = Client::new(&registry.address, &options(&wrong)).expect("client");
    let err = client
        .get_manifest("test/img", "v1")
        .expect_err("wrong password");
    assert!(
        err.to_string().contains(&format!(
            "the registry refused the credentials for {} from {}",
            registry.address,
            wrong.display()
        )),
        "{err}"
    );
    assert!(!err.to_string().contains("guess"), "{err}");

    // Docker writes keys as URLs; the host is what counts.
    let right = auth_file(
        work.path(),
        &[(
            &format!("http://{}/v2/", registry.address),
            "tester",
            "s3cret",
        )],
    );
    let mut client = Client::new(&registry.address, &options(&right)).expect("client");
    image.push(&mut client, "test/img", "v1");
    let fetched = client.get_manifest("test/img", "v1").expect("pull");
    assert_eq!(fetched.bytes, image.manifest);
    assert_eq!(
        fetch_blob(&mut client, "test/img", &Digest::of(&image.layer)),
        image.layer
    );
}

#[test]
fn a_bearer_challenge_is_answered_with_a_token_from_its_realm() {
    let tokens = TokenServer::start(&["test/img"]);
    let registry = Registry::start_with(tokens.auth());
    let work = tempfile::tempdir().expect("temp dir");
    let image = TinyImage::new("behind a token\n");

    let credentials = auth_file(work.path(), &[(&registry.address, "tester", "s3cret")]);
    let mut client = Client::new(&registry.address, &options(&credentials)).expect("client");
    client.ping().expect("a 401 ping is an answer");
    assert!(tokens.requests().is_empty(), "a ping needs no token");
    image.push(&mut client, "test/img", "v1");
    let requests = tokens.requests();
    let push = requests
        .iter()
        .find(|r| r.target.contains("pull%2Cpush"))
        .unwrap_or_else(|| panic!("no push token asked for: {requests:?}"));
    assert!(push.target.starts_with("/token?"), "{}", push.target);
    assert!(
        push.target.contains(&format!("service={TOKEN_SERVICE}")),
        "{}",
        push.target
    );
    assert!(
        push.target
            .contains("scope=repository%3Atest%2Fimg%3Apull%2Cpush"),
        "{}",
        push.target
    );
    assert_eq!(
        push.authorization.as_deref(),
        Some(format!("Basic {}", BASE64.encode("tester:s3cret")).as_str())
    );
    let asked = requests.len();
    assert_eq!(
        client.get_manifest("test/img", "v1").expect("pull").bytes,
        image.manifest
    );
    assert_eq!(
        tokens.requests().len(),
        asked,
        "the push token serves a pull"
    );

    // Anonymous: no auth file entry, no Authorization to the token endpoint.
    let anonymous = work.path().join("anonymous");
    fs::create_dir(&anonymous).expect("dir");
    let mut client = anonymous_client(&registry, &anonymous);
    let fetched = client
        .get_manifest("test/img", "v1")
        .expect("anonymous pull");
    assert_eq!(fetched.digest, image.digest());
    let last = tokens.requests().pop().expect("a token request");
    assert!(
        last.target.contains("scope=repository%3Atest%2Fimg%3Apull"),
        "{}",
        last.target
    );
    assert_eq!(last.authorization, None);
}
