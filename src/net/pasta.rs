//! Rootless networking with pasta (Debian's `passt` package).
//!
//! A normal user owns its container's user namespace, and so may configure the network
//! namespace that user namespace owns; what it may not do is touch the host's: a veth
//! end and a bridge there need CAP_NET_ADMIN in the host's user namespace, which only
//! root has (the kernel answers EPERM). pasta gets around that without privilege. It
//! joins the container's namespaces, makes a tap device there (`/dev/net/tun`) with the
//! host's address and routes copied in, and carries every packet the container sends
//! through ordinary sockets of the user's on the host: a TCP connection from the
//! container is a TCP connection pasta makes. A published port (`-t 8080:80`) is a
//! socket pasta listens on, on the host, passing what arrives into the container.
//!
//! See also [pasta(1)](https://passt.top/builds/latest/web/passt.1.html).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::NetError;
use super::ports::{PortMapping, Protocol};

/// How long pasta may take to set up the namespace and go to the background.
const PASTA_TIMEOUT: Duration = Duration::from_secs(20);

// ANCHOR: pasta_args
/// pasta's arguments for the container whose first process is `pid`, publishing `ports`,
/// writing its own pid to `pid_file`.
pub fn pasta_args(pid: i32, ports: &[PortMapping], pid_file: &Path) -> Vec<String> {
    let mut args = vec![
        "--config-net".to_string(),
        "--quiet".to_string(),
        // The tap is eth0, as on a bridge (pasta would name it after the host's link).
        "--ns-ifname".to_string(),
        super::CONTAINER_LINK.to_string(),
        "--pid".to_string(),
        pid_file.display().to_string(),
    ];
    for protocol in [Protocol::Tcp, Protocol::Udp] {
        let flag = match protocol {
            Protocol::Tcp => "-t",
            Protocol::Udp => "-u",
        };
        let spec: Vec<String> = ports
            .iter()
            .filter(|p| p.protocol == protocol)
            .map(|p| match p.host_ip {
                Some(ip) => format!("{ip}/{}:{}", p.host_port, p.container_port),
                None => format!("{}:{}", p.host_port, p.container_port),
            })
            .collect();
        args.push(flag.to_string());
        // `none`: nothing but what is asked for (pasta's default would forward every
        // port the container listens on).
        args.push(if spec.is_empty() {
            "none".to_string()
        } else {
            spec.join(",")
        });
    }
    // Nor the other way: the container reaches the host's ports only through its
    // address, never the host's loopback.
    args.extend(["-T".into(), "none".into(), "-U".into(), "none".into()]);
    args.push(pid.to_string());
    args
}
// ANCHOR_END: pasta_args

/// Start pasta for the container whose first process is `pid`; it goes to the
/// background once the namespace is configured. Returns its pid.
pub fn start(pid: i32, ports: &[PortMapping], state_dir: &Path) -> Result<i32, NetError> {
    let program = super::find_program("pasta").ok_or_else(|| {
        NetError::Pasta(
            "pasta is not installed: rootless containers get their network from it; `just setup` installs Debian's passt".to_string(),
        )
    })?;
    let pid_file = state_dir.join("pasta.pid");
    // pasta goes to the background once the namespace is set up: its own process ends.
    let output = crate::process::run_within(
        Command::new(program).args(pasta_args(pid, ports, &pid_file)),
        b"",
        PASTA_TIMEOUT,
    )
    .map_err(|e| NetError::Pasta(format!("run pasta: {e}")))?;
    let (status, stderr) = (output.status, String::from_utf8_lossy(&output.stderr));
    if !status.success() {
        let said: Vec<&str> = stderr.lines().filter(|l| !l.contains("syslog")).collect();
        let mut message = format!("pasta failed: {}", said.join("; "));
        if stderr.contains("tun") {
            message.push_str(
                " (pasta needs to open /dev/net/tun, which most distributions make 0666; here it is not open to this user)",
            );
        }
        return Err(NetError::Pasta(message));
    }
    let text = std::fs::read_to_string(&pid_file).map_err(|source| NetError::Io {
        op: "read",
        path: pid_file.clone(),
        source,
    })?;
    text.trim()
        .parse()
        .map_err(|_| NetError::Pasta(format!("pasta wrote {text:?} as its pid")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasta_publishes_only_the_ports_asked_for() {
        let ports: Vec<PortMapping> = vec![
            "8080:80".parse().unwrap(),
            "127.0.0.1:53:53/udp".parse().unwrap(),
        ];
        let args = pasta_args(42, &ports, Path::new("/run/x/pasta.pid"));
        assert_eq!(
            args.join(" "),
            "--config-net --quiet --ns-ifname eth0 --pid /run/x/pasta.pid -t 8080:80 -u 127.0.0.1/53:53 -T none -U none 42"
        );
        let none = pasta_args(42, &[], Path::new("/p"));
        assert!(none.join(" ").contains("-t none -u none"), "{none:?}");
    }
}
