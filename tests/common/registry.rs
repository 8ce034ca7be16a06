//! A real OCI registry for the tests: Debian's `docker-registry` (distribution 2.8) on
//! 127.0.0.1 at a free port, its config and storage in a temp dir, stopped when dropped.
//! And `skopeo`, the reference client, run with a timeout.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::background::Background;
use super::output_within;

/// How long the registry may take to answer its first ping.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How long one skopeo or htpasswd run may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// Where Debian installs the registry.
const REGISTRY_BINARY: &str = "/usr/bin/docker-registry";

/// How the registry asks for credentials.
pub enum RegistryAuth {
    /// It does not: anyone may pull and push.
    None,
    /// HTTP Basic, checked against an htpasswd file with this one user.
    Htpasswd {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
    /// Bearer tokens from `realm`, issued for `service` by `issuer`, signed by a key
    /// whose certificate is `rootcertbundle`.
    Token {
        /// The token endpoint's URL.
        realm: String,
        /// The registry's name in the tokens (`aud`).
        service: String,
        /// Who signs the tokens (`iss`).
        issuer: String,
        /// The PEM certificate of the signing key.
        rootcertbundle: PathBuf,
    },
}

/// A running registry. Dropping it stops the process, then removes its storage.
pub struct Registry {
    // Declared first, so dropped first: the process stops before its directory goes.
    process: Background,
    dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`, as a reference names it.
    pub address: String,
}

impl Registry {
    /// A registry without authentication.
    pub fn start() -> Registry {
        Registry::start_with(RegistryAuth::None)
    }

    /// A registry with `auth`.
    pub fn start_with(auth: RegistryAuth) -> Registry {
        assert!(
            Path::new(REGISTRY_BINARY).exists(),
            "{REGISTRY_BINARY} is missing: `apt-get install docker-registry skopeo` (Debian)"
        );
        let dir = tempfile::Builder::new()
            .prefix("nutshell-registry-")
            .tempdir()
            .expect("temp dir for the registry");
        let auth_section = match auth {
            RegistryAuth::None => String::new(),
            RegistryAuth::Htpasswd { user, password } => {
                let path = dir.path().join("htpasswd");
                fs::write(&path, htpasswd_line(&user, &password)).expect("write htpasswd");
                format!(
                    "auth:\n  htpasswd:\n    realm: nutshell-test\n    path: {}\n",
                    path.display()
                )
            }
            RegistryAuth::Token {
                realm,
                service,
                issuer,
                rootcertbundle,
            } => format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    \
                 issuer: {issuer}\n    rootcertbundle: {}\n",
                rootcertbundle.display()
            ),
        };
        // A port found free may be taken before the registry binds it: try again then.
        for _ in 0..5 {
            let port = free_port();
            let address = format!("127.0.0.1:{port}");
            let config = dir.path().join("config.yml");
            fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
                     storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                     http:\n  addr: {address}\n  secret: nutshell-test-secret\n{auth_section}",
                    dir.path().join("storage").display()
                ),
            )
            .expect("write the registry config");
            let log_path = dir.path().join("registry.log");
            let log = fs::File::create(&log_path).expect("create the registry log");
            let child = Command::new(REGISTRY_BINARY)
                .arg("serve")
                .arg(&config)
                // Its REGISTRY_* variables would override the config.
                .env_clear()
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone the log file"))
                .stderr(log)
                .spawn()
                .expect("start docker-registry");
            match wait_until_ready(child, &address, &log_path) {
                Ready::Yes(child) => {
                    return Registry {
                        process: Background::new(child),
                        dir,
                        address,
                    };
                }
                Ready::AddressInUse => continue,
                Ready::Failed(why) => panic!("docker-registry did not start: {why}"),
            }
        }
        panic!("docker-registry found no free port in 5 tries");
    }

    /// The root of its filesystem storage.
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Where the filesystem driver keeps the bytes of the blob with this hex digest.
    pub fn blob_data(&self, hex: &str) -> PathBuf {
        self.storage()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// A `docker://` URL of `repository:tag` on it, for skopeo.
    pub fn docker_url(&self, repository_and_tag: &str) -> String {
        format!("docker://{}/{repository_and_tag}", self.address)
    }

    /// Stop it now.
    pub fn stop(self) {
        self.process.stop();
    }
}

/// How a start went.
enum Ready {
    Yes(Child),
    AddressInUse,
    Failed(String),
}

/// Ping `address` until it answers; give up when the process ends or after
/// [`START_TIMEOUT`], killing it. Nothing in here panics with the child unguarded.
fn wait_until_ready(mut child: Child, address: &str, log: &Path) -> Ready {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(1)))
        .build()
        .new_agent();
    let url = format!("http://{address}/v2/");
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let text = fs::read_to_string(log).unwrap_or_default();
                if text.contains("address already in use") {
                    return Ready::AddressInUse;
                }
                return Ready::Failed(format!("it exited with {status}: {text}"));
            }
            Ok(None) => {}
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Ready::Failed(format!("wait for it: {e}"));
            }
        }
        // Any HTTP answer means it is serving: 200, or 401 with authentication.
        if let Ok(response) = agent.get(&url).call()
            && matches!(response.status().as_u16(), 200 | 401)
        {
            return Ready::Yes(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let text = fs::read_to_string(log).unwrap_or_default();
            return Ready::Failed(format!(
                "no answer at {url} within {START_TIMEOUT:?}: {text}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// `user:bcrypt(password)`, from apache2-utils' htpasswd: the registry takes bcrypt only.
fn htpasswd_line(user: &str, password: &str) -> String {
    let output = run_tool("htpasswd", &["-Bbn", user, password]);
    String::from_utf8_lossy(&output.stdout).trim().to_string() + "\n"
}

/// Run `skopeo ARGS` to the end, within a timeout, and check that it succeeded.
pub fn skopeo(args: &[&str]) -> Output {
    run_tool("skopeo", args)
}

/// Run `program` (podman or buildah) with `args` in a storage of the test's own under
/// `storage` (the vfs driver: plain directories, no mounts), never the machine's.
pub fn in_storage(program: &str, storage: &Path, args: &[&str]) -> Output {
    let root = storage.join("root").display().to_string();
    let runroot = storage.join("run").display().to_string();
    let mut all = vec![
        "--root",
        &root,
        "--runroot",
        &runroot,
        "--storage-driver",
        "vfs",
    ];
    all.extend_from_slice(args);
    run_tool(program, &all)
}

/// Run `program ARGS` within [`TOOL_TIMEOUT`]; fail unless it succeeds.
pub fn run_tool(program: &str, args: &[&str]) -> Output {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {program} (apt-get install skopeo apache2-utils): {e}"));
    let output = output_within(child, TOOL_TIMEOUT);
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// One request the token endpoint received.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The request target: `/token?service=…&scope=…`.
    pub target: String,
    /// Its `Authorization` header, if any.
    pub authorization: Option<String>,
}

/// A token endpoint for a registry started with [`TokenServer::auth`]: it answers every
/// request with one JWT, signed (RS256, with openssl) by a key whose self-signed
/// certificate the registry trusts, granting pull and push on `repositories`. It records
/// what it was asked, so a test can check the client's side of the flow.
pub struct TokenServer {
    /// Its URL, the registry's `realm`.
    pub realm: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<TokenRequest>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    dir: tempfile::TempDir,
}

/// The registry's name in its tokens.
pub const TOKEN_SERVICE: &str = "nutshell-test-registry";
/// Who signs the tokens.
const TOKEN_ISSUER: &str = "nutshell-test-issuer";

impl TokenServer {
    /// Make the key and the token, and start serving it.
    pub fn start(repositories: &[&str]) -> TokenServer {
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};

        let dir = tempfile::tempdir().expect("temp dir for the token key");
        let (key, cert, der) = (
            dir.path().join("key.pem"),
            dir.path().join("cert.pem"),
            dir.path().join("cert.der"),
        );
        let path = |p: &Path| p.display().to_string();
        run_tool(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=nutshell-test-token",
                "-keyout",
                &path(&key),
                "-out",
                &path(&cert),
            ],
        );
        run_tool(
            "openssl",
            &[
                "x509",
                "-in",
                &path(&cert),
                "-outform",
                "DER",
                "-out",
                &path(&der),
            ],
        );
        let der = fs::read(&der).expect("read the certificate");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        let header =
            serde_json::json!({"alg": "RS256", "typ": "JWT", "x5c": [STANDARD.encode(der)]});
        let access: Vec<_> = repositories
            .iter()
            .map(|name| serde_json::json!({"type": "repository", "name": name, "actions": ["pull", "push"]}))
            .collect();
        let claims = serde_json::json!({
            "iss": TOKEN_ISSUER, "sub": "tester", "aud": TOKEN_SERVICE,
            "exp": now + 3600, "nbf": now - 60, "iat": now - 60, "jti": "nutshell-test",
            "access": access,
        });
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let input = dir.path().join("input");
        fs::write(&input, &signed).expect("write the signing input");
        let signature = dir.path().join("signature");
        run_tool(
            "openssl",
            &[
                "dgst",
                "-sha256",
                "-sign",
                &path(&key),
                "-out",
                &path(&signature),
                &path(&input),
            ],
        );
        let signature = fs::read(&signature).expect("read the signature");
        let token = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature));
        let body = serde_json::json!({"token": token, "expires_in": 3600}).to_string();

        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the token endpoint");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let realm = format!("http://{}/token", listener.local_addr().expect("address"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (requests, stop) = (requests.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            if let Some(request) = answer_token_request(stream, &body) {
                                requests.lock().expect("requests").push(request);
                            }
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        TokenServer {
            realm,
            requests,
            stop,
            thread: Some(thread),
            dir,
        }
    }

    /// The registry's `auth: token:` settings for this endpoint.
    pub fn auth(&self) -> RegistryAuth {
        RegistryAuth::Token {
            realm: self.realm.clone(),
            service: TOKEN_SERVICE.to_string(),
            issuer: TOKEN_ISSUER.to_string(),
            rootcertbundle: self.dir.path().join("cert.pem"),
        }
    }

    /// What it was asked so far.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.requests.lock().expect("requests").clone()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Read one request's head (for at most 5 s) and answer `body` as JSON.
fn answer_token_request(mut stream: std::net::TcpStream, body: &str) -> Option<TokenRequest> {
    use std::io::{Read as _, Write as _};
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .ok()?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 << 10 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.lines();
    let target = lines.next()?.split(' ').nth(1)?.to_string();
    let authorization = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
        .map(|(_, value)| value.trim().to_string());
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).ok()?;
    Some(TokenRequest {
        target,
        authorization,
    })
}
