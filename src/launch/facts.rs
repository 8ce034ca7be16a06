//! What the planner needs to know about this host, gathered in one place so that the
//! plan itself is a pure function: tests build these facts by hand.

use std::path::{Path, PathBuf};

use crate::capabilities::{self, CapSet};
use crate::cgroups::{self, CgroupLayout};
use crate::userns::{self, Caller, SubIdRange};

/// Where newuidmap and newgidmap are looked for: distributions install them in /usr/bin.
pub const ID_MAP_HELPER_DIRS: &[&str] = &["/usr/bin", "/usr/sbin", "/bin", "/sbin"];

/// The host, as the planner sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostFacts {
    /// Who starts the container.
    pub caller: Caller,
    /// The cgroup hierarchies, if any are mounted.
    pub cgroups: Option<CgroupLayout>,
    /// Whether the memory controller can limit swap.
    pub swap_accounting: bool,
    /// CPUs online: the most `--cpus` may ask for.
    pub online_cpus: usize,
    /// The highest capability number this kernel knows (`/proc/sys/kernel/cap_last_cap`).
    pub cap_last_cap: u32,
    /// The caller's bounding set: no container of it can have a capability outside it.
    pub bounding: CapSet,
    /// Where images and containers' directories live (see [`crate::store`]).
    pub data_dir: PathBuf,
    /// Where containers' state lives (see [`crate::store::state_dir`]).
    pub state_root: PathBuf,
    /// The subordinate uid ranges the caller's containers may use: its own `/etc/subuid`
    /// ranges, or for root those of the `nutshell` entry. `Err` holds why they cannot be
    /// used (an overlap), for a container that needs them.
    pub subuids: Result<Vec<SubIdRange>, String>,
    /// The same for gids.
    pub subgids: Result<Vec<SubIdRange>, String>,
    /// newuidmap and newgidmap, if installed.
    pub id_map_helpers: Option<(PathBuf, PathBuf)>,
    /// The program the container's first process re-executes as nutshell-init: this
    /// process's own binary.
    pub init_binary: PathBuf,
}

impl HostFacts {
    /// The facts of this host and this process.
    pub fn detect() -> HostFacts {
        let proc_dir = Path::new("/proc");
        let caller = Caller::current();
        let cgroups = cgroups::detect_host(proc_dir).ok();
        let swap_accounting = cgroups.as_ref().is_some_and(cgroups::swap_accounting);
        let subids = |file: &'static str| -> Result<Vec<SubIdRange>, String> {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            if caller.privileged {
                userns::root_ranges(file, &text).map_err(|e| e.to_string())
            } else {
                Ok(userns::parse_subid(
                    &text,
                    caller.user.as_deref(),
                    caller.uid,
                ))
            }
        };
        let dirs: Vec<&Path> = ID_MAP_HELPER_DIRS.iter().map(Path::new).collect();
        let cap_last_cap = capabilities::cap_last_cap(proc_dir).unwrap_or(40);
        let bounding = capabilities::current()
            .map(|caps| caps.bounding)
            .unwrap_or_else(|_| CapSet::all_up_to(cap_last_cap));
        HostFacts {
            subuids: subids("/etc/subuid"),
            subgids: subids("/etc/subgid"),
            caller,
            swap_accounting,
            cgroups,
            online_cpus: cgroups::online_cpus(),
            cap_last_cap,
            bounding,
            data_dir: crate::store::data_dir(),
            state_root: crate::store::state_dir(),
            id_map_helpers: userns::find_helpers(&dirs),
            init_binary: PathBuf::from("/proc/self/exe"),
        }
    }
}
