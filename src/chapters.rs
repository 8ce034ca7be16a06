//! The chapter map: each chapter's binary, what it adds, and what it needs from the host.
//!
//! `nutshell doctor` checks these needs against the machine it runs on. A test keeps the
//! map honest: a chapter marked written has a `[[bin]]` in Cargo.toml and a page in the
//! book's SUMMARY.md, and no other chapter does.

use crate::namespaces::Namespace;

/// Something a chapter needs from the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Running as root (real capabilities in the initial user namespace).
    Root,
    /// Being able to create this namespace.
    Namespace(Namespace),
    /// A cgroup controller, in v1 or v2.
    CgroupController(&'static str),
    /// Mounting overlayfs.
    Overlay,
    /// A program root's containers need (chapter 8's `nft`).
    RootProgram(&'static str),
    /// A program a normal user's containers need (chapter 8's `pasta`).
    UserProgram(&'static str),
}

/// One chapter of the book.
#[derive(Debug, Clone, Copy)]
pub struct Chapter {
    /// The binary's name, also the book page's name: `ch01-chroot`.
    pub bin: &'static str,
    /// What the chapter adds.
    pub adds: &'static str,
    /// What it needs beyond the chapters before it (each chapter runs everything so far).
    pub needs: &'static [Need],
    /// Whether its four parts exist yet.
    pub written: bool,
    /// Whether it runs for a normal user too, in a user namespace of its own (and so do
    /// the chapters after it): then it needs neither root nor cgroup controllers, as a
    /// rootless container gets no cgroup.
    pub rootless: bool,
}

/// Every chapter, in order.
pub const CHAPTERS: &[Chapter] = &[
    Chapter {
        bin: "ch01-chroot",
        adds: "chroot into a root filesystem",
        needs: &[Need::Root],
        written: true,
        rootless: false,
    },
    Chapter {
        bin: "ch02-namespaces",
        adds: "UTS, IPC and time namespaces",
        needs: &[
            Need::Namespace(Namespace::Uts),
            Need::Namespace(Namespace::Ipc),
            Need::Namespace(Namespace::Time),
            // Only to mount a fresh /proc inside; chapter 4 is about mount namespaces.
            Need::Namespace(Namespace::Mount),
        ],
        written: true,
        rootless: false,
    },
    Chapter {
        bin: "ch03-pid",
        adds: "the PID namespace and a PID 1 init",
        needs: &[Need::Namespace(Namespace::Pid)],
        written: true,
        rootless: false,
    },
    Chapter {
        bin: "ch04-mount",
        adds: "the mount namespace and pivot_root",
        needs: &[Need::Namespace(Namespace::Mount)],
        written: true,
        rootless: false,
    },
    Chapter {
        bin: "ch05-cgroups",
        adds: "cgroups: CPU, memory, pids; the cgroup namespace",
        needs: &[
            Need::Namespace(Namespace::Cgroup),
            Need::CgroupController("cpu"),
            Need::CgroupController("memory"),
            Need::CgroupController("pids"),
        ],
        written: true,
        rootless: false,
    },
    Chapter {
        bin: "ch06-user",
        adds: "user namespaces and rootless containers",
        needs: &[Need::Namespace(Namespace::User)],
        written: true,
        rootless: true,
    },
    Chapter {
        bin: "ch07-overlayfs",
        adds: "overlayfs copy-on-write roots",
        needs: &[Need::Overlay],
        written: true,
        rootless: false,
    },
    Chapter {
        bin: "ch08-network",
        adds: "network namespaces, veth, a bridge, NAT; pasta rootless",
        needs: &[
            Need::Namespace(Namespace::Net),
            Need::RootProgram("nft"),
            Need::UserProgram("pasta"),
        ],
        written: true,
        rootless: false,
    },
    Chapter {
        bin: "ch09-images",
        adds: "OCI images and layers",
        // It runs chapter 8's container, network and all.
        needs: &[
            Need::Overlay,
            Need::RootProgram("nft"),
            Need::UserProgram("pasta"),
        ],
        written: true,
        rootless: false,
    },
    Chapter {
        bin: "ch10-build",
        adds: "building images",
        // Each RUN is chapter 8's container (with no network unless asked for).
        needs: &[Need::Overlay],
        written: true,
        rootless: false,
    },
    Chapter {
        bin: "ch11-runtime",
        adds: "the OCI runtime",
        needs: &[],
        written: true,
        rootless: false,
    },
    Chapter {
        bin: "ch12-scheduler",
        adds: "a tiny scheduler",
        needs: &[],
        written: true,
        rootless: false,
    },
];

impl Chapter {
    /// Whether this chapter runs for a normal user: it, or a chapter before it, brought
    /// the rootless container.
    pub fn runs_rootless(&self) -> bool {
        for chapter in CHAPTERS {
            if chapter.rootless {
                return true;
            }
            if chapter.bin == self.bin {
                break;
            }
        }
        false
    }

    /// Everything this chapter needs, its own needs and those of every chapter before it.
    pub fn all_needs(&self) -> Vec<Need> {
        let mut needs = Vec::new();
        for chapter in CHAPTERS {
            for need in chapter.needs {
                if !needs.contains(need) {
                    needs.push(*need);
                }
            }
            if chapter.bin == self.bin {
                break;
            }
        }
        needs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chapters_are_numbered_one_to_twelve_in_order() {
        for (i, chapter) in CHAPTERS.iter().enumerate() {
            assert!(
                chapter.bin.starts_with(&format!("ch{:02}-", i + 1)),
                "{}",
                chapter.bin
            );
        }
        assert_eq!(CHAPTERS.len(), 12);
    }

    #[test]
    fn a_chapter_needs_what_the_chapters_before_it_need() {
        let ch04 = CHAPTERS[3].all_needs();
        assert!(ch04.contains(&Need::Root));
        assert!(ch04.contains(&Need::Namespace(Namespace::Pid)));
        assert!(ch04.contains(&Need::Namespace(Namespace::Mount)));
        assert!(!ch04.contains(&Need::Overlay));
    }

    #[test]
    fn written_chapters_come_first() {
        let first_unwritten = CHAPTERS
            .iter()
            .position(|c| !c.written)
            .unwrap_or(CHAPTERS.len());
        assert!(CHAPTERS[first_unwritten..].iter().all(|c| !c.written));
    }
}
