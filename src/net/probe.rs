//! A client to try a container's network with from the host: one HTTP GET over TCP,
//! retried until a server answers or the time is up.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// GET `/` from `address`, retrying while nothing listens yet, for at most `timeout`
/// in all; the response's body.
pub fn http_get(address: SocketAddr, timeout: Duration) -> std::io::Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        match get_once(address, deadline) {
            Ok(body) => return Ok(body),
            Err(e) if Instant::now() < deadline && retryable(&e) => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e),
        }
    }
}

fn retryable(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionReset | UnexpectedEof | TimedOut
    )
}

fn get_once(address: SocketAddr, deadline: Instant) -> std::io::Result<String> {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(100));
    let mut stream = TcpStream::connect_timeout(&address, left)?;
    stream.set_read_timeout(Some(left))?;
    stream.set_write_timeout(Some(left))?;
    write!(stream, "GET / HTTP/1.0\r\nHost: {address}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    match response.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.") => Ok(body.to_string()),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("not an HTTP response: {response:?}"),
        )),
    }
}
