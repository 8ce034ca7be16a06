//! The commands that act on a recorded container: `ps`, `stop`, `kill`, `rm`, `logs`,
//! `inspect`, `port` and `top`, with what they print, in docker's words.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::json;

use super::ContainersError;
use super::record::{Phase, Record, Records};
use crate::launch::{ContainerId, Detached, HostFacts};
use crate::net::PortMapping;

/// How long `stop` and `rm -f` wait for a monitor to finish its teardown once the
/// container's process has ended.
const TEARDOWN_WAIT: Duration = Duration::from_secs(30);

// ANCHOR: reconcile
/// The record as it is now. A container whose monitor was killed died with it
/// (PR_SET_PDEATHSIG); its leftovers are swept here, and the record says what happened.
pub fn reconcile(records: &Records, mut record: Record, facts: &HostFacts) -> Record {
    if record.phase_now() != Phase::Exited || record.phase == Phase::Exited {
        return record;
    }
    // Its launch lock died with the monitor, so the sweep may take it.
    let _ = crate::launch::sweep_stale(&facts.state_root, facts);
    record.phase = Phase::Exited;
    record.pid = None;
    record.finished.get_or_insert(crate::launch::now_secs());
    record.error =
        Some("its monitor was killed; nutshell removed what the container left".to_string());
    if record.auto_remove {
        let _ = records.remove(&record);
    } else {
        let _ = records.save(&record);
    }
    record
}
// ANCHOR_END: reconcile

/// Every record, reconciled.
pub fn all(records: &Records, facts: &HostFacts) -> Vec<Record> {
    records
        .list()
        .into_iter()
        .map(|r| reconcile(records, r, facts))
        .collect()
}

/// Find `query` and reconcile it.
pub fn find(records: &Records, query: &str, facts: &HostFacts) -> Result<Record, ContainersError> {
    Ok(reconcile(records, records.find(query)?, facts))
}

// ANCHOR: ps_table
/// `ps`'s table, as docker prints it; `now` in seconds since the epoch.
pub fn ps_table(records: &[Record], now: u64) -> String {
    let mut rows = vec![
        [
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES",
        ]
        .map(String::from),
    ];
    for r in records {
        rows.push([
            r.short_id().to_string(),
            r.image.clone(),
            quoted_command(&r.command),
            format!("{} ago", duration(now.saturating_sub(r.created))),
            status(r, now),
            ports(&r.ports),
            r.name.clone(),
        ]);
    }
    crate::image::listing::columns(&rows)
}
// ANCHOR_END: ps_table

/// `ps --format json`: one object per container, podman's field names.
pub fn ps_json(records: &[Record], now: u64) -> serde_json::Value {
    records
        .iter()
        .map(|r| {
            json!({
                "Id": r.id,
                "Names": [r.name],
                "Image": r.image,
                "Command": r.command,
                "Created": r.created,
                "State": phase_name(r.phase_now()),
                "Status": status(r, now),
                "ExitCode": r.exit_code,
                "Pid": r.pid,
                "Ports": r.ports.iter().map(port_json).collect::<Vec<_>>(),
            })
        })
        .collect()
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Created => "created",
        Phase::Running => "running",
        Phase::Exited => "exited",
    }
}

fn port_json(p: &PortMapping) -> serde_json::Value {
    json!({
        "host_ip": p.host_ip.map_or(String::new(), |ip| ip.to_string()),
        "host_port": p.host_port,
        "container_port": p.container_port,
        "protocol": p.protocol.name(),
    })
}

/// The command as docker's `ps` shows it: quoted, cut at 20 characters.
fn quoted_command(argv: &[String]) -> String {
    let line = argv.join(" ");
    if line.chars().count() > 20 {
        format!("\"{}…\"", line.chars().take(19).collect::<String>())
    } else {
        format!("\"{line}\"")
    }
}

/// `Up 5 seconds`, `Exited (0) 3 minutes ago`, `Created`.
pub fn status(r: &Record, now: u64) -> String {
    match r.phase_now() {
        Phase::Created => "Created".to_string(),
        Phase::Running => format!(
            "Up {}",
            duration(now.saturating_sub(r.started.unwrap_or(r.created)))
        ),
        Phase::Exited => match r.exit_code {
            Some(code) => format!(
                "Exited ({code}) {} ago",
                duration(now.saturating_sub(r.finished.unwrap_or(now)))
            ),
            None => "Exited (unknown)".to_string(),
        },
    }
}

/// A length of time in docker's words (`HumanDuration`): `Less than a second`,
/// `5 seconds`, `About a minute`, `3 minutes`, `About an hour`, `2 hours`, `3 days`.
pub fn duration(seconds: u64) -> String {
    match seconds {
        0 => "Less than a second".to_string(),
        1 => "1 second".to_string(),
        s if s < 60 => format!("{s} seconds"),
        s if s < 120 => "About a minute".to_string(),
        s if s < 3600 => format!("{} minutes", s / 60),
        s if s < 7200 => "About an hour".to_string(),
        s if s < 48 * 3600 => format!("{} hours", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

/// Published ports as docker lists them: `0.0.0.0:8080->80/tcp, ...`.
pub fn ports(ports: &[PortMapping]) -> String {
    let each: Vec<String> = ports.iter().map(PortMapping::to_string).collect();
    each.join(", ")
}

/// The host address a port is published on, `0.0.0.0` for every one.
fn host_ip(p: &PortMapping) -> std::net::Ipv4Addr {
    p.host_ip.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED)
}

/// `port C`: `80/tcp -> 0.0.0.0:8080`, one line per published port.
pub fn port_lines(record: &Record) -> String {
    record
        .ports
        .iter()
        .map(|p| {
            format!(
                "{}/{} -> {}:{}\n",
                p.container_port,
                p.protocol.name(),
                host_ip(p),
                p.host_port
            )
        })
        .collect()
}

/// The container's launch state, while it runs.
fn launched(record: &Record, facts: &HostFacts) -> Result<Detached, ContainersError> {
    let id = ContainerId::parse(&record.id)?;
    Ok(Detached::find(&facts.state_root, &id)?)
}

fn not_running(record: &Record, what: &str) -> ContainersError {
    ContainersError::Phase {
        name: record.name.clone(),
        why: format!("is not running: {what}"),
    }
}

// ANCHOR: kill
/// Send `signal` to the container's first process (its init passes it on to the
/// program), through the launch state's pidfd-checked kill.
pub fn kill(record: &Record, signal: Signal, facts: &HostFacts) -> Result<(), ContainersError> {
    if record.phase_now() != Phase::Running {
        return Err(not_running(record, "there is nothing to signal"));
    }
    launched(record, facts)?.kill(signal, false, facts)?;
    Ok(())
}
// ANCHOR_END: kill

// ANCHOR: stop
/// `stop`: the stop signal, then SIGKILL after `timeout` if it still runs; returns once
/// the monitor has recorded the end and torn the container down. Stopping a stopped
/// container is not an error (docker's rule).
pub fn stop(
    records: &Records,
    record: &Record,
    timeout: Duration,
    facts: &HostFacts,
) -> Result<(), ContainersError> {
    if record.phase_now() != Phase::Running {
        return Ok(());
    }
    let signal = crate::oci::runtime::parse_signal(&record.stop_signal)?;
    let container = launched(record, facts)?;
    container.kill(signal, false, facts)?;
    if !wait_for_monitor(records, record, timeout) {
        // Every process of its cgroup: the program may have ignored the first signal.
        let _ = container.kill(Signal::SIGKILL, true, facts);
        if !wait_for_monitor(records, record, TEARDOWN_WAIT) {
            return Err(ContainersError::Monitor(format!(
                "of {} did not finish within {}s of SIGKILL",
                record.name,
                TEARDOWN_WAIT.as_secs()
            )));
        }
    }
    Ok(())
}
// ANCHOR_END: stop

/// Wait at most `timeout` for `record`'s monitor to end (it does once the container has
/// ended and is torn down).
pub fn wait_for_monitor(records: &Records, record: &Record, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let current = records.read(&record.id);
        if current.as_ref().is_none_or(|r| !r.monitor_alive()) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `rm`: remove a stopped container's record; with `force`, kill a running one first.
pub fn rm(
    records: &Records,
    record: &Record,
    force: bool,
    facts: &HostFacts,
) -> Result<(), ContainersError> {
    if record.phase_now() == Phase::Running {
        if !force {
            return Err(ContainersError::Phase {
                name: record.name.clone(),
                why: "is running: stop it first (nutshell stop), or use rm -f".to_string(),
            });
        }
        let _ = launched(record, facts).map(|c| c.kill(Signal::SIGKILL, true, facts));
        if !wait_for_monitor(records, record, TEARDOWN_WAIT) {
            return Err(ContainersError::Monitor(format!(
                "of {} did not finish within {}s of SIGKILL",
                record.name,
                TEARDOWN_WAIT.as_secs()
            )));
        }
    }
    records.remove(record)
}

/// `inspect C`: docker's layout of what the record and spec say, as a one-element array.
pub fn inspect(records: &Records, record: &Record) -> serde_json::Value {
    let spec = records.spec(&record.id).ok();
    let time = |t: Option<u64>| {
        t.map_or(
            "0001-01-01T00:00:00Z".to_string(),
            crate::image::pack::rfc3339,
        )
    };
    let phase = record.phase_now();
    let mut ports = serde_json::Map::new();
    for p in &record.ports {
        ports.insert(
            format!("{}/{}", p.container_port, p.protocol.name()),
            json!([{
                "HostIp": host_ip(p).to_string(),
                "HostPort": p.host_port.to_string(),
            }]),
        );
    }
    json!([{
        "Id": record.id,
        "Name": record.name,
        "Created": time(Some(record.created)),
        "Path": record.command.first(),
        "Args": record.command.get(1..).unwrap_or_default(),
        "State": {
            "Status": phase_name(phase),
            "Running": phase == Phase::Running,
            "Pid": record.pid.unwrap_or(0),
            "ExitCode": record.exit_code.unwrap_or(0),
            "Error": record.error.clone().unwrap_or_default(),
            "StartedAt": time(record.started),
            "FinishedAt": time(record.finished),
            "MonitorPid": record.monitor.map_or(0, |m| m.pid),
        },
        "Image": record.image_digest,
        "ImageName": record.image,
        "LogPath": records.dir(&record.id).join("container.log"),
        "Config": {
            "Hostname": spec.as_ref().and_then(|s| s.hostname.clone()),
            "Env": spec.as_ref().map(|s| s.process.env.clone()),
            "Cmd": record.command,
            "WorkingDir": spec.as_ref().map(|s| s.process.cwd.clone()),
            "User": spec.as_ref().map(|s| format!("{}:{}", s.process.user.uid, s.process.user.gid)),
            "Tty": record.tty,
            "StopSignal": record.stop_signal,
        },
        "HostConfig": {
            "NetworkMode": record.network,
            "AutoRemove": record.auto_remove,
            "ReadonlyRootfs": spec.as_ref().is_some_and(|s| s.root.readonly),
        },
        "NetworkSettings": {
            "IPAddress": record.address.map_or(String::new(), |a| a.to_string()),
            "Ports": ports,
        },
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::ProcessRef;

    fn record(phase: Phase) -> Record {
        Record {
            id: format!("1a2b3c4d5e6f{}", "0".repeat(52)),
            name: "web".into(),
            image: "localhost:5000/webapp".into(),
            image_digest: "sha256:00".into(),
            command: ["httpd", "-f", "-v", "-p", "80", "-h", "/www"]
                .map(String::from)
                .to_vec(),
            created: 1000,
            started: Some(1001),
            finished: Some(1100),
            phase,
            exit_code: (phase == Phase::Exited).then_some(0),
            error: None,
            monitor: ProcessRef::of(std::process::id() as i32),
            pid: None,
            network: "bridge".into(),
            address: None,
            ports: vec!["8080:80".parse().unwrap()],
            auto_remove: false,
            stop_signal: "SIGTERM".into(),
            tty: false,
        }
    }

    #[test]
    fn ps_prints_dockers_columns_status_and_ports() {
        let table = ps_table(&[record(Phase::Running)], 1006);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "CONTAINER ID   IMAGE                   COMMAND                  CREATED         STATUS         PORTS                  NAMES"
        );
        assert_eq!(
            lines[1],
            "1a2b3c4d5e6f   localhost:5000/webapp   \"httpd -f -v -p 80 -…\"   6 seconds ago   Up 5 seconds   0.0.0.0:8080->80/tcp   web"
        );
        let exited = status(&record(Phase::Exited), 1280);
        assert_eq!(exited, "Exited (0) 3 minutes ago");
    }

    #[test]
    fn durations_read_as_dockers() {
        let cases = [
            (0, "Less than a second"),
            (1, "1 second"),
            (59, "59 seconds"),
            (90, "About a minute"),
            (600, "10 minutes"),
            (4000, "About an hour"),
            (7200, "2 hours"),
            (3 * 86_400, "3 days"),
        ];
        for (seconds, text) in cases {
            assert_eq!(duration(seconds), text, "{seconds}");
        }
    }

    #[test]
    fn port_lists_each_published_port_as_docker_port_does() {
        assert_eq!(
            port_lines(&record(Phase::Running)),
            "80/tcp -> 0.0.0.0:8080\n"
        );
    }
}
