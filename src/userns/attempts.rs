//! What root in a user namespace may and may not do: each attempt made for real, from
//! inside the container, and reported with the errno the kernel gave.

use std::fmt;
use std::fs::OpenOptions;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use nix::sys::stat::{Mode, SFlag, makedev, mknod};
use nix::time::{ClockId, clock_gettime, clock_settime};

/// One thing root inside tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// What was tried, as the reader would say it.
    pub what: String,
    /// Whether it worked, or the errno that refused it.
    pub result: Result<(), Errno>,
    /// Whether success would mean the container acted on the host.
    pub reaches_host: bool,
    /// Why the kernel decided so.
    pub why: &'static str,
}

impl Attempt {
    /// A success that reaches the host: the isolation failed.
    pub fn escaped(&self) -> bool {
        self.reaches_host && self.result.is_ok()
    }
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match self.result {
            Ok(()) => "allowed".to_string(),
            Err(errno) => format!("refused, {errno}"),
        };
        write!(f, "{}: {verdict}\n          ({})", self.what, self.why)
    }
}

fn attempt(
    what: impl Into<String>,
    reaches_host: bool,
    why: &'static str,
    result: Result<(), Errno>,
) -> Attempt {
    Attempt {
        what: what.into(),
        result,
        reaches_host,
        why,
    }
}

fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

// ANCHOR: try_host_actions
/// Run from inside the container, as its root: things its own namespaces allow, then
/// things that would reach the host. `host_file` is a file owned by the host's root on a
/// bind mount (opened for appending, and nothing written), `host_secret` one only the
/// host's root may read, `scratch` a directory for a tmpfs.
pub fn try_host_actions(host_file: &Path, host_secret: &Path, scratch: &Path) -> Vec<Attempt> {
    let tmpfs = mount(
        Some("tmpfs"),
        scratch,
        Some("tmpfs"),
        MsFlags::MS_NOSUID,
        Some("size=1m"),
    );
    let node = scratch.join("sda");
    let mut attempts = vec![
        attempt(
            "sethostname(\"changed\")",
            false,
            "CAP_SYS_ADMIN over the UTS namespace, which the user namespace owns",
            nix::unistd::sethostname("changed"),
        ),
        attempt(
            format!("mount a tmpfs on {}", scratch.display()),
            false,
            "CAP_SYS_ADMIN over the mount namespace, which the user namespace owns",
            tmpfs,
        ),
        attempt(
            format!("mknod {} b 8 0 (the host's first disk)", node.display()),
            true,
            "device nodes need CAP_MKNOD in the host's user namespace",
            mknod(
                &node,
                SFlag::S_IFBLK,
                Mode::from_bits_truncate(0o600),
                makedev(8, 0),
            ),
        ),
        attempt(
            format!("open {} for writing", host_file.display()),
            true,
            "its owner, the host's root, is not mapped: no capability inside applies to it",
            OpenOptions::new()
                .append(true)
                .open(host_file)
                .map(drop)
                .map_err(io_errno),
        ),
        attempt(
            format!("read {}", host_secret.display()),
            true,
            "CAP_DAC_OVERRIDE inside does not apply to a file whose owner is not mapped",
            std::fs::read(host_secret).map(drop).map_err(io_errno),
        ),
    ];
    let module = nix::kmod::init_module(&[], c"");
    attempts.push(attempt(
        "init_module (load a kernel module)",
        true,
        if module == Err(Errno::ENOSYS) {
            "this kernel was built without module support, so no one may; elsewhere the answer is EPERM: CAP_SYS_MODULE counts only in the host's user namespace"
        } else {
            "CAP_SYS_MODULE counts only in the host's user namespace"
        },
        module,
    ));
    // Setting the clock to the time it already is: harmless, were it allowed.
    let clock = clock_gettime(ClockId::CLOCK_REALTIME)
        .and_then(|now| clock_settime(ClockId::CLOCK_REALTIME, now));
    attempts.push(attempt(
        "clock_settime(CLOCK_REALTIME) (set the wall clock)",
        true,
        "CAP_SYS_TIME counts only in the host's user namespace; a time namespace moves only the monotonic and boot clocks",
        clock,
    ));
    attempts
}
// ANCHOR_END: try_host_actions
