//! The record of each docker-style container, `<data>/monitor/<id>/`: `record.json` (what
//! it is and how it ended), `spec.json` (the spec its monitor launches), `container.log`
//! (its output) and `monitor.log` (its monitor's own errors). Names are symlinks in
//! `<data>/monitor/.names/`, made with symlink(2), which fails if one exists: two
//! containers can never get one name, even when two `nutshell run`s race.
//!
//! A record outlives its container: `ps -a`, `logs` and `inspect` read a stopped one
//! until `nutshell rm` removes it (or `--rm` does, as the container ends).

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ContainersError;
use crate::launch::ProcessRef;
use crate::net::PortMapping;
use crate::spec::ContainerSpec;

/// Where a docker-style container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Recorded; its monitor is making it.
    Created,
    /// Its program runs.
    Running,
    /// Its program has ended (or never started: then `error` says why).
    Exited,
}

/// What a container is and how it went, as `ps`, `inspect` and `logs` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The 64 hexadecimal digits that name it everywhere: its launch state, cgroup and
    /// directories too.
    pub id: String,
    /// Its unique name.
    pub name: String,
    /// The image, as it was asked for.
    pub image: String,
    /// The image's manifest digest.
    pub image_digest: String,
    /// What it runs.
    pub command: Vec<String>,
    /// When it was recorded, in seconds since the epoch.
    pub created: u64,
    /// When its program started.
    pub started: Option<u64>,
    /// When its program ended.
    pub finished: Option<u64>,
    /// Where it is in its life, as its monitor last wrote it.
    pub phase: Phase,
    /// Its exit status (128 + the signal when a signal ended it).
    pub exit_code: Option<i32>,
    /// Why it never ran or ended unseen (its monitor was killed).
    pub error: Option<String>,
    /// Its monitor process, once started.
    pub monitor: Option<ProcessRef>,
    /// Its first process as the host sees it, while it runs.
    pub pid: Option<i32>,
    /// The network: bridge, none, host or pasta.
    pub network: String,
    /// Its address on the bridge.
    pub address: Option<std::net::Ipv4Addr>,
    /// Its published ports.
    pub ports: Vec<PortMapping>,
    /// Removed when it ends (`--rm`).
    pub auto_remove: bool,
    /// The signal `stop` sends first (the image's StopSignal, or SIGTERM).
    pub stop_signal: String,
    /// It has a terminal (`-t`).
    pub tty: bool,
}

impl Record {
    /// Where it is now: a record that says it runs, but whose monitor has gone, has
    /// ended unseen. (One with no monitor yet is still being made.)
    pub fn phase_now(&self) -> Phase {
        match self.phase {
            Phase::Created | Phase::Running if self.monitor.is_some() && !self.monitor_alive() => {
                Phase::Exited
            }
            phase => phase,
        }
    }

    /// Whether its monitor still runs.
    pub fn monitor_alive(&self) -> bool {
        self.monitor.is_some_and(|m| m.alive())
    }

    /// The first 12 digits of its id, as `ps` shows it.
    pub fn short_id(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }
}

/// The records under `<data>/monitor`.
#[derive(Debug, Clone)]
pub struct Records {
    root: PathBuf,
}

impl Records {
    /// The records of data directory `data_dir`.
    pub fn new(data_dir: &Path) -> Records {
        Records {
            root: data_dir.join("monitor"),
        }
    }

    /// The directory of container `id`.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    fn names(&self) -> PathBuf {
        self.root.join(".names")
    }

    /// Record a new container, with the spec its monitor will launch. The name is
    /// taken first, atomically; nothing is left if a step fails.
    pub fn create(
        &self,
        record: &Record,
        spec: &ContainerSpec,
    ) -> Result<PathBuf, ContainersError> {
        let io = |op: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| ContainersError::Io { op, path, source }
        };
        let names = self.names();
        std::fs::create_dir_all(&names).map_err(io("make", &names))?;
        let link = names.join(&record.name);
        match std::os::unix::fs::symlink(&record.id, &link) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let holder = std::fs::read_link(&link)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                return Err(ContainersError::NameInUse {
                    name: record.name.clone(),
                    id: holder,
                });
            }
            Err(source) => return Err(io("link", &link)(source)),
        }
        let dir = self.dir(&record.id);
        let made = std::fs::create_dir(&dir)
            .map_err(io("make", &dir))
            .and_then(|()| write_json(&dir.join("spec.json"), spec))
            .and_then(|()| write_json(&dir.join("record.json"), record));
        if let Err(err) = made {
            let _ = std::fs::remove_dir_all(&dir);
            let _ = std::fs::remove_file(&link);
            return Err(err);
        }
        Ok(dir)
    }

    /// Write `record` again, atomically (a reader sees the old or the new one whole).
    pub fn save(&self, record: &Record) -> Result<(), ContainersError> {
        write_json(&self.dir(&record.id).join("record.json"), record)
    }

    /// Read container `id`'s record.
    pub fn read(&self, id: &str) -> Option<Record> {
        let bytes = std::fs::read(self.dir(id).join("record.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The spec container `id` was recorded with.
    pub fn spec(&self, id: &str) -> Result<ContainerSpec, ContainersError> {
        let path = self.dir(id).join("spec.json");
        let bytes = std::fs::read(&path).map_err(|source| ContainersError::Io {
            op: "read",
            path: path.clone(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|e| ContainersError::Io {
            op: "read",
            path,
            source: io::Error::other(e),
        })
    }

    /// Every record, oldest first.
    pub fn list(&self) -> Vec<Record> {
        let mut records: Vec<Record> = std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| self.read(&entry.file_name().to_string_lossy()))
            .collect();
        records.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        records
    }

    // ANCHOR: find
    /// The container `query` names: a name, a whole id, or a prefix of exactly one id.
    pub fn find(&self, query: &str) -> Result<Record, ContainersError> {
        let not_found = || ContainersError::NotFound {
            query: query.to_string(),
        };
        if query.is_empty() || query.contains('/') {
            return Err(not_found());
        }
        if let Ok(id) = std::fs::read_link(self.names().join(query))
            && let Some(record) = self.read(&id.to_string_lossy())
        {
            return Ok(record);
        }
        let mut matches = self.list().into_iter().filter(|r| r.id.starts_with(query));
        match (matches.next(), matches.next()) {
            (Some(record), None) => Ok(record),
            (Some(_), Some(_)) => Err(ContainersError::Ambiguous {
                query: query.to_string(),
            }),
            (None, _) => Err(not_found()),
        }
    }
    // ANCHOR_END: find

    /// Remove container `id`'s record and free its name.
    pub fn remove(&self, record: &Record) -> Result<(), ContainersError> {
        let link = self.names().join(&record.name);
        if std::fs::read_link(&link).is_ok_and(|id| id.as_os_str() == record.id.as_str()) {
            let _ = std::fs::remove_file(&link);
        }
        let dir = self.dir(&record.id);
        let removed = std::fs::remove_dir_all(&dir);
        // The last record takes the empty directories with it (rmdir(2) keeps others').
        let _ = std::fs::remove_dir(self.names());
        let _ = std::fs::remove_dir(&self.root);
        match removed {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(ContainersError::Io {
                op: "remove",
                path: dir,
                source,
            }),
        }
    }
}

/// Write `value` as JSON to `path` atomically (see [`crate::store::write_json`]).
fn write_json(path: &Path, value: &impl Serialize) -> Result<(), ContainersError> {
    crate::store::write_json(path, value).map_err(|source| ContainersError::Io {
        op: "write",
        path: path.to_path_buf(),
        source,
    })
}

/// A new container id: 64 hexadecimal digits from getrandom(2), as docker's and
/// podman's are.
pub fn new_id() -> String {
    crate::launch::random_hex(32)
}

/// A name for a container that was given none: two words, as docker draws them, with
/// the id's first digits so that it is unique too.
pub fn default_name(id: &str) -> String {
    const LEFT: [&str; 8] = [
        "brave", "calm", "eager", "gentle", "keen", "lucid", "quiet", "tidy",
    ];
    const RIGHT: [&str; 8] = [
        "curie", "dijkstra", "hopper", "knuth", "lovelace", "ritchie", "thompson", "turing",
    ];
    let byte = |i: usize| u8::from_str_radix(id.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0);
    format!(
        "{}_{}_{}",
        LEFT[usize::from(byte(0)) % LEFT.len()],
        RIGHT[usize::from(byte(2)) % RIGHT.len()],
        id.get(..4).unwrap_or(id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, name: &str) -> Record {
        Record {
            id: id.to_string(),
            name: name.to_string(),
            image: "webapp".into(),
            image_digest: "sha256:00".into(),
            command: vec!["true".into()],
            created: 1,
            started: None,
            finished: None,
            phase: Phase::Created,
            exit_code: None,
            error: None,
            monitor: None,
            pid: None,
            network: "none".into(),
            address: None,
            ports: Vec::new(),
            auto_remove: false,
            stop_signal: "SIGTERM".into(),
            tty: false,
        }
    }

    fn spec() -> ContainerSpec {
        crate::spec::chapters::for_chapter(
            8,
            Path::new("/"),
            crate::spec::Program::Args(vec!["true".into()]),
        )
    }

    #[test]
    fn a_container_is_found_by_name_whole_id_or_unique_prefix() {
        let data = tempfile::tempdir().unwrap();
        let records = Records::new(data.path());
        let a = record(&format!("ab{}", "1".repeat(62)), "web");
        let b = record(&format!("ac{}", "2".repeat(62)), "db");
        records.create(&a, &spec()).unwrap();
        records.create(&b, &spec()).unwrap();
        assert_eq!(records.find("web").unwrap().id, a.id);
        assert_eq!(records.find(&b.id).unwrap().name, "db");
        assert_eq!(records.find("ab1").unwrap().name, "web");
        assert_eq!(
            records.find("a").unwrap_err().to_string(),
            "more than one container has an ID starting with \"a\": give more of it, or the name"
        );
        assert_eq!(
            records.find("x").unwrap_err().to_string(),
            "no container with name or ID \"x\" found"
        );
    }

    #[test]
    fn a_name_is_taken_once_and_freed_by_remove() {
        let data = tempfile::tempdir().unwrap();
        let records = Records::new(data.path());
        let a = record(&"a".repeat(64), "web");
        records.create(&a, &spec()).unwrap();
        let err = records
            .create(&record(&"b".repeat(64), "web"), &spec())
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("the container name \"web\" is already in use by aaaaaaaaaaaa"),
            "{err}"
        );
        assert!(!records.dir(&"b".repeat(64)).exists(), "nothing left");
        records.remove(&a).unwrap();
        records
            .create(&record(&"b".repeat(64), "web"), &spec())
            .unwrap();
    }

    #[test]
    fn a_record_whose_monitor_is_gone_has_exited() {
        let mut r = record(&"c".repeat(64), "web");
        r.phase = Phase::Running;
        r.monitor = Some(ProcessRef {
            pid: i32::MAX,
            start_time: 1,
        });
        assert_eq!(r.phase_now(), Phase::Exited);
        r.monitor = ProcessRef::of(std::process::id() as i32);
        assert_eq!(r.phase_now(), Phase::Running);
    }

    #[test]
    fn new_ids_are_64_hex_digits_and_default_names_carry_their_start() {
        let id = new_id();
        assert_eq!(id.len(), 64);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(id, new_id());
        let name = default_name(&id);
        assert!(name.ends_with(&id[..4]), "{name}");
        assert!(crate::launch::ContainerId::parse(&name).is_ok());
    }
}
