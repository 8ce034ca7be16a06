//! The files that name things in a container: `/etc/hostname`, `/etc/hosts` and
//! `/etc/resolv.conf`, written per container and bind-mounted over the image's, as docker
//! and podman do, so that the image stays as it is and every container gets its own.

use std::net::Ipv4Addr;

/// `/etc/hostname`.
pub fn hostname_file(hostname: &str) -> String {
    format!("{hostname}\n")
}

// ANCHOR: name_files
/// `/etc/hosts`: localhost, and the container's own name at its address.
pub fn hosts_file(hostname: &str, address: Option<Ipv4Addr>) -> String {
    let mut hosts =
        String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    match address {
        Some(address) => hosts.push_str(&format!("{address}\t{hostname}\n")),
        None => hosts.push_str(&format!("127.0.1.1\t{hostname}\n")),
    }
    hosts
}

/// `/etc/resolv.conf`: the host's, less the nameservers on its loopback (a local
/// resolver such as systemd-resolved's 127.0.0.53), which the container cannot reach:
/// its 127.0.0.1 is its own.
pub fn resolv_conf(host: &str) -> String {
    let mut out = String::from("# written by nutshell from the host's /etc/resolv.conf\n");
    let mut dropped = Vec::new();
    for line in host.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        let mut words = trimmed.split_whitespace();
        if words.next() == Some("nameserver")
            && let Some(server) = words.next()
            && server.parse::<Ipv4Addr>().is_ok_and(|a| a.is_loopback())
        {
            dropped.push(server.to_string());
            continue;
        }
        out.push_str(trimmed);
        out.push('\n');
    }
    if !dropped.is_empty() {
        out.push_str(&format!(
            "# left out, on the host's loopback: {}\n",
            dropped.join(" ")
        ));
    }
    out
}
// ANCHOR_END: name_files

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_names_the_container_at_its_address() {
        let hosts = hosts_file("web", Some(Ipv4Addr::new(10, 88, 0, 2)));
        assert!(hosts.starts_with("127.0.0.1\tlocalhost\n"), "{hosts}");
        assert!(hosts.ends_with("10.88.0.2\tweb\n"), "{hosts}");
        assert!(hosts_file("box", None).ends_with("127.0.1.1\tbox\n"));
    }

    #[test]
    fn resolv_conf_keeps_the_hosts_servers_but_not_those_on_its_loopback() {
        let conf = resolv_conf(
            "# comment\nnameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch example.org\n",
        );
        assert_eq!(
            conf,
            "# written by nutshell from the host's /etc/resolv.conf\nnameserver 192.0.2.53\nsearch example.org\n# left out, on the host's loopback: 127.0.0.53\n"
        );
    }
}
