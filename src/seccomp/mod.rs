//! Seccomp profiles compiled to BPF: the filter a container's process runs under
//! (chapter 11).
//!
//! Namespaces decide what a process can *see* and capabilities what it *may* do as root,
//! but every system call still reaches the kernel: a bug in `keyctl`, `bpf` or
//! `userfaultfd` is reachable from any container. A seccomp filter closes that door. It is
//! a small program in classic BPF ([`bpf`]) that the kernel runs on every syscall the
//! process makes, before the call: it looks at the syscall number, the ABI and the
//! arguments, and returns a verdict: run the call, fail it with an errno, kill the
//! process. The filter is inherited across fork and exec and can never be removed, only
//! joined by more filters (the strictest verdict wins).
//!
//! Docker and podman describe the filter as a *profile*, the OCI runtime spec's
//! `linux.seccomp`: a default action and rules naming syscalls. [`compile`] turns a
//! [`Profile`] into a [`Filter`], purely, so the program can be printed and tested
//! without root; [`install`] loads it with seccomp(2) just before exec. The program has
//! this layout (as libseccomp's, plus runc's `-ENOSYS` stub):
//!
//! 1. **The ABI.** If `seccomp_data.arch` is not this machine's `AUDIT_ARCH_*`, kill the
//!    process. Syscall numbers mean different calls on another ABI (`read` is 0 on x86_64
//!    but 3 on i386, where 0 is `restart_syscall`), so rules written for the native
//!    numbers would test the wrong calls, and a denylist profile would let every 32-bit
//!    call through (`int 0x80` works from any x86_64 process). libseccomp does the same
//!    for architectures not in the filter, with `SCMP_ACT_KILL` (the thread); we kill the
//!    process, which cannot be left half-alive. A profile may list other ABIs
//!    (`SCMP_ARCH_X86`, `SCMP_ARCH_X32`): nutshell has only the native syscall table, so
//!    their calls are killed too. That is stricter than runc, which filters them with
//!    their own numbers: a 32-bit binary in the container dies with SIGSYS.
//! 2. **x32 on x86_64.** x32 processes share `AUDIT_ARCH_X86_64` and mark their calls by
//!    bit 30 of the number (`__X32_SYSCALL_BIT`). Every number at or above it is killed,
//!    libseccomp's own test (`jge 0x40000000`) when x32 is not in the filter: otherwise
//!    `0x40000000 | 59` would be an `execve` no rule for 59 sees.
//! 3. **New syscalls get ENOSYS** (runc's patch). Unless the default action lets calls
//!    run (allow, log, trace) or already is `ERRNO(ENOSYS)`, a number above the largest
//!    the profile names returns `ENOSYS`: a syscall newer than the profile (say
//!    `clone3` under an old one) then looks absent, and glibc falls back to the old call
//!    instead of failing with the default's `EPERM`.
//! 4. **The rules, in profile order; the first that matches decides**, as the runtime
//!    spec says (runtime-spec#1159) and runc does. A rule's syscall matches when its
//!    number is the call's and *all* its argument conditions hold (AND), also several
//!    conditions on the same argument. (runc differs there: libseccomp compares an
//!    argument once per rule, so runc splits such a rule into one rule per condition,
//!    which ORs them.) Rules without conditions share one `ret` per run of `jeq`s.
//! 5. **The default action.**
//!
//! Names this architecture does not have (`_llseek`, `mmap2`, the `*_time64` calls of
//! 32-bit ABIs) are skipped and listed in [`Filter::skipped`], as libseccomp and runc skip
//! them.
//!
//! See also [seccomp(2)](https://man7.org/linux/man-pages/man2/seccomp.2.html), the
//! kernel's [seccomp_filter.rst](https://docs.kernel.org/userspace-api/seccomp_filter.html)
//! and the runtime spec's
//! [seccomp](https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md#seccomp).

pub mod bpf;
pub mod syscalls;

use std::collections::HashSet;
use std::path::PathBuf;

use nix::errno::Errno;

pub use bpf::Insn;
use bpf::{Block, Exit};
use syscalls::SyscallTable;

/// A seccomp profile, as the OCI runtime spec's `linux.seccomp` has it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// What happens to a syscall no rule matches (`defaultAction`).
    pub default_action: Action,
    /// The errno (or trace message) of the default action (`defaultErrnoRet`); `None`:
    /// `EPERM`.
    #[serde(default)]
    pub default_errno: Option<u32>,
    /// The ABIs the profile is meant for, by OCI name (`SCMP_ARCH_X86_64`,
    /// `SCMP_ARCH_AARCH64`, `SCMP_ARCH_X86`, `SCMP_ARCH_X32`, ...); empty: the native one.
    #[serde(default)]
    pub architectures: Vec<String>,
    /// seccomp(2) flags, by name: `SECCOMP_FILTER_FLAG_TSYNC`, `SECCOMP_FILTER_FLAG_LOG`,
    /// `SECCOMP_FILTER_FLAG_SPEC_ALLOW`.
    #[serde(default)]
    pub flags: Vec<String>,
    /// A unix socket for `SCMP_ACT_NOTIFY` (`listenerPath`): refused, nutshell has no
    /// notify agent.
    #[serde(default)]
    pub listener_path: Option<PathBuf>,
    /// The rules, in order: the first that matches a call decides.
    #[serde(default)]
    pub syscalls: Vec<SyscallRule>,
}

/// One entry of `linux.seccomp.syscalls`: an action for some syscalls, when their
/// arguments satisfy every condition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyscallRule {
    /// The syscalls, by name.
    pub names: Vec<String>,
    /// What happens to a matching call.
    pub action: Action,
    /// The errno (or trace message) of the action (`errnoRet`); `None`: `EPERM`.
    #[serde(default)]
    pub errno: Option<u32>,
    /// Conditions on the arguments, all of which must hold (AND); empty: always.
    #[serde(default)]
    pub args: Vec<ArgCondition>,
}

/// A test on one 64-bit syscall argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgCondition {
    /// Which argument, 0..=5.
    pub index: u32,
    /// The value compared with; for [`Op::MaskedEqual`], the mask.
    pub value: u64,
    /// For [`Op::MaskedEqual`]: what the masked argument must equal (`valueTwo`).
    #[serde(default)]
    pub value_two: u64,
    /// The comparison, unsigned.
    pub op: Op,
}

/// How an argument is compared with [`ArgCondition::value`]: unsigned, on 64 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// `SCMP_CMP_NE`: `arg != value`.
    NotEqual,
    /// `SCMP_CMP_LT`: `arg < value`.
    LessThan,
    /// `SCMP_CMP_LE`: `arg <= value`.
    LessOrEqual,
    /// `SCMP_CMP_EQ`: `arg == value`.
    Equal,
    /// `SCMP_CMP_GE`: `arg >= value`.
    GreaterOrEqual,
    /// `SCMP_CMP_GT`: `arg > value`.
    GreaterThan,
    /// `SCMP_CMP_MASKED_EQ`: `(arg & value) == value_two`.
    MaskedEqual,
}

impl Op {
    /// The op an OCI name (`SCMP_CMP_EQ` ...) stands for.
    pub fn from_oci(name: &str) -> Option<Op> {
        Some(match name {
            "SCMP_CMP_NE" => Op::NotEqual,
            "SCMP_CMP_LT" => Op::LessThan,
            "SCMP_CMP_LE" => Op::LessOrEqual,
            "SCMP_CMP_EQ" => Op::Equal,
            "SCMP_CMP_GE" => Op::GreaterOrEqual,
            "SCMP_CMP_GT" => Op::GreaterThan,
            "SCMP_CMP_MASKED_EQ" => Op::MaskedEqual,
            _ => return None,
        })
    }
}

/// What the filter does with a call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// `SCMP_ACT_KILL`: kill the calling thread (the historical meaning).
    Kill,
    /// `SCMP_ACT_KILL_PROCESS`: kill the whole process.
    KillProcess,
    /// `SCMP_ACT_KILL_THREAD`: kill the calling thread.
    KillThread,
    /// `SCMP_ACT_TRAP`: send SIGSYS, which the process may catch.
    Trap,
    /// `SCMP_ACT_ERRNO`: fail the call with the rule's errno, `EPERM` if none.
    Errno,
    /// `SCMP_ACT_TRACE`: stop for a ptrace tracer; the errno field is the message (as in
    /// runc, `EPERM` if none). Without a tracer the call fails with `ENOSYS`.
    Trace,
    /// `SCMP_ACT_ALLOW`: run the call.
    #[default]
    Allow,
    /// `SCMP_ACT_LOG`: run the call and log it to the audit log.
    Log,
    /// `SCMP_ACT_NOTIFY`: ask a user-space agent; refused, nutshell has none.
    Notify,
}

impl Action {
    /// The action an OCI name (`SCMP_ACT_ALLOW` ...) stands for.
    pub fn from_oci(name: &str) -> Option<Action> {
        Some(match name {
            "SCMP_ACT_KILL" => Action::Kill,
            "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
            "SCMP_ACT_KILL_THREAD" => Action::KillThread,
            "SCMP_ACT_TRAP" => Action::Trap,
            "SCMP_ACT_ERRNO" => Action::Errno,
            "SCMP_ACT_TRACE" => Action::Trace,
            "SCMP_ACT_ALLOW" => Action::Allow,
            "SCMP_ACT_LOG" => Action::Log,
            "SCMP_ACT_NOTIFY" => Action::Notify,
            _ => return None,
        })
    }

    /// The filter's return value for this action, with `errno` (`EPERM` if `None`) in the
    /// low 16 bits where the action carries one.
    fn return_value(self, errno: Option<u32>) -> Result<u32, SeccompError> {
        let data = || {
            let errno = errno.unwrap_or(libc::EPERM as u32);
            if errno > 0xffff {
                Err(SeccompError::ErrnoOutOfRange { errno })
            } else {
                Ok(errno)
            }
        };
        Ok(match self {
            Action::Kill | Action::KillThread => bpf::RET_KILL_THREAD,
            Action::KillProcess => bpf::RET_KILL_PROCESS,
            Action::Trap => bpf::RET_TRAP,
            Action::Errno => bpf::RET_ERRNO | data()?,
            Action::Trace => bpf::RET_TRACE | data()?,
            Action::Allow => bpf::RET_ALLOW,
            Action::Log => bpf::RET_LOG,
            Action::Notify => {
                return Err(SeccompError::NotImplemented {
                    what: "the SCMP_ACT_NOTIFY action",
                });
            }
        })
    }

    /// Whether the call runs (or is left to a tracer): no `-ENOSYS` stub for such a
    /// default, as in runc, since a newer syscall should then run too.
    fn lets_calls_run(self) -> bool {
        matches!(self, Action::Allow | Action::Log | Action::Trace)
    }
}

/// A profile turned into a program, ready for [`install`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Filter {
    /// The BPF program, at most [`bpf::MAX_INSNS`] instructions.
    pub program: Vec<Insn>,
    /// The seccomp(2) flags: `SECCOMP_FILTER_FLAG_TSYNC` 1, `LOG` 2, `SPEC_ALLOW` 4.
    pub flags: u32,
    /// Syscall names this architecture does not have, skipped as runc and libseccomp do.
    pub skipped: Vec<String>,
    /// What the program returns when no rule matches.
    pub default_return: u32,
    /// Numbers above this get `ENOSYS` (runc's stub for syscalls newer than the profile).
    pub enosys_above: Option<u32>,
    /// How many of the profile's rules name a syscall this architecture has.
    pub rules: usize,
    /// How many distinct syscalls the rules name.
    pub syscalls: usize,
}

impl std::fmt::Display for Filter {
    /// One line for a plan: `a seccomp filter of 429 BPF instructions: default ERRNO(38),
    /// 22 rules for 344 syscalls, 85 unknown syscalls skipped` (podman's profile).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a seccomp filter of {} BPF instructions: default {}, {} for {}",
            self.program.len(),
            bpf::describe_return(self.default_return),
            count(self.rules, "rule"),
            count(self.syscalls, "syscall"),
        )?;
        if let Some(max) = self.enosys_above {
            write!(f, ", ENOSYS above syscall {max}")?;
        }
        if !self.skipped.is_empty() {
            write!(
                f,
                ", {} skipped",
                count(self.skipped.len(), "unknown syscall")
            )?;
        }
        let names: Vec<&str> = FLAGS
            .iter()
            .filter(|(_, bit)| self.flags & bit != 0)
            .map(|(name, _)| name.trim_start_matches("SECCOMP_FILTER_FLAG_"))
            .collect();
        if !names.is_empty() {
            write!(f, ", flags {}", names.join("|"))?;
        }
        Ok(())
    }
}

fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A profile that cannot be compiled, or not by nutshell.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SeccompError {
    /// An action name that is not one of the OCI `SCMP_ACT_*`.
    #[error(
        "unknown seccomp action {name:?}: expected SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, SCMP_ACT_TRACE or SCMP_ACT_LOG"
    )]
    UnknownAction {
        /// The name given.
        name: String,
    },
    /// An operator name that is not one of the OCI `SCMP_CMP_*`.
    #[error(
        "unknown seccomp operator {name:?}: expected SCMP_CMP_NE, _LT, _LE, _EQ, _GE, _GT or _MASKED_EQ"
    )]
    UnknownOp {
        /// The name given.
        name: String,
    },
    /// A flag name that is not a seccomp(2) flag nutshell passes on.
    #[error(
        "unknown seccomp flag {name:?}: expected SECCOMP_FILTER_FLAG_TSYNC, SECCOMP_FILTER_FLAG_LOG or SECCOMP_FILTER_FLAG_SPEC_ALLOW"
    )]
    UnknownFlag {
        /// The name given.
        name: String,
    },
    /// An architecture name that is not an OCI `SCMP_ARCH_*`.
    #[error(
        "unknown seccomp architecture {name:?}: expected an SCMP_ARCH_* name such as SCMP_ARCH_X86_64"
    )]
    UnknownArch {
        /// The name given.
        name: String,
    },
    /// The profile lists architectures, but not this machine's.
    #[error(
        "the seccomp profile is for {listed}, not this machine's {native}: none of its rules would apply; add {native} to its architectures"
    )]
    ArchNotListed {
        /// The architectures listed, comma-separated.
        listed: String,
        /// This machine's OCI architecture name.
        native: &'static str,
    },
    /// Seccomp user notification, which needs an agent nutshell does not have.
    #[error("{what} is not implemented: nutshell has no seccomp notify agent")]
    NotImplemented {
        /// What was asked for.
        what: &'static str,
    },
    /// An argument index beyond the six a syscall has.
    #[error(
        "the seccomp rule for {syscalls}: argument index {index} is out of range, syscalls take arguments 0 to 5"
    )]
    ArgIndex {
        /// The rule's syscall names, comma-separated.
        syscalls: String,
        /// The index given.
        index: u32,
    },
    /// An errno that does not fit the 16 data bits of a seccomp return value.
    #[error("seccomp errno {errno}: a filter returns at most 16 bits of data, 0 to 65535")]
    ErrnoOutOfRange {
        /// The errno given.
        errno: u32,
    },
    /// A rule with so many conditions that a jump over them would skip more than 255
    /// instructions.
    #[error(
        "the seccomp rule for {syscall} has {conditions} argument conditions: too many to jump over in classic BPF (at most 255 instructions); split the rule"
    )]
    TooManyConditions {
        /// The syscall being compiled.
        syscall: String,
        /// How many conditions the rule has.
        conditions: usize,
    },
    /// A program longer than the kernel accepts.
    #[error(
        "the seccomp program has {len} instructions, more than the kernel's limit of {max} (BPF_MAXINSNS); merge rules that share an action"
    )]
    TooLong {
        /// The program's length.
        len: usize,
        /// [`bpf::MAX_INSNS`].
        max: usize,
    },
    /// A program the kernel would refuse: a bug in the compiler, caught before loading.
    #[error("internal error: seccomp instruction {index}: {reason}")]
    Malformed {
        /// The instruction at fault.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No syscall table for the machine nutshell was built for.
    #[error(
        "nutshell has no syscall table for {arch}: seccomp profiles can only be compiled on x86_64 and aarch64"
    )]
    NoSyscallTable {
        /// The architecture nutshell was built for.
        arch: &'static str,
    },
}

/// seccomp(2) flags by OCI name.
const FLAGS: [(&str, u32); 3] = [
    ("SECCOMP_FILTER_FLAG_TSYNC", 1),
    ("SECCOMP_FILTER_FLAG_LOG", 2),
    ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", 4),
];

/// The OCI architecture names, as libseccomp knows them.
const ARCHITECTURES: [&str; 24] = [
    "SCMP_ARCH_NATIVE",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
];

impl Profile {
    /// The profile an OCI `linux.seccomp` describes.
    pub fn from_oci(seccomp: &oci_spec::runtime::LinuxSeccomp) -> Result<Profile, SeccompError> {
        let action = |action: &oci_spec::runtime::LinuxSeccompAction| {
            let name = oci_name(action);
            Action::from_oci(&name).ok_or(SeccompError::UnknownAction { name })
        };
        let mut syscalls = Vec::new();
        for rule in seccomp.syscalls().iter().flatten() {
            let mut args = Vec::new();
            for arg in rule.args().iter().flatten() {
                let name = oci_name(&arg.op());
                args.push(ArgCondition {
                    index: u32::try_from(arg.index()).unwrap_or(u32::MAX),
                    value: arg.value(),
                    value_two: arg.value_two().unwrap_or(0),
                    op: Op::from_oci(&name).ok_or(SeccompError::UnknownOp { name })?,
                });
            }
            syscalls.push(SyscallRule {
                names: rule.names().clone(),
                action: action(&rule.action())?,
                errno: rule.errno_ret(),
                args,
            });
        }
        Ok(Profile {
            default_action: action(&seccomp.default_action())?,
            default_errno: seccomp.default_errno_ret(),
            architectures: seccomp
                .architectures()
                .iter()
                .flatten()
                .map(oci_name)
                .collect(),
            flags: seccomp.flags().iter().flatten().map(oci_name).collect(),
            listener_path: seccomp.listener_path().clone(),
            syscalls,
        })
    }
}

/// An oci-spec enum's name in `config.json` (`SCMP_ACT_ALLOW`): its serde name.
fn oci_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        other => format!("{other:?}"),
    }
}

// ANCHOR: compile
/// Compile `profile` for the architecture nutshell was built for. Pure: nothing is
/// installed.
pub fn compile(profile: &Profile) -> Result<Filter, SeccompError> {
    let table = syscalls::native().ok_or(SeccompError::NoSyscallTable {
        arch: std::env::consts::ARCH,
    })?;
    compile_for(profile, table)
}

/// One rule with its names looked up.
struct Resolved<'a> {
    rule: &'a SyscallRule,
    numbers: Vec<(&'a str, u32)>,
    verdict: u32,
}

fn compile_for(profile: &Profile, table: &SyscallTable) -> Result<Filter, SeccompError> {
    check_architectures(&profile.architectures, table)?;
    let flags = parse_flags(&profile.flags)?;
    if profile.listener_path.is_some() {
        return Err(SeccompError::NotImplemented {
            what: "a seccomp listener (listenerPath)",
        });
    }
    let default_return = profile.default_action.return_value(profile.default_errno)?;

    let mut skipped: Vec<String> = Vec::new();
    let mut rules = Vec::new();
    for rule in &profile.syscalls {
        if let Some(arg) = rule.args.iter().find(|arg| arg.index > 5) {
            return Err(SeccompError::ArgIndex {
                syscalls: rule.names.join(", "),
                index: arg.index,
            });
        }
        let mut numbers = Vec::new();
        for name in &rule.names {
            match table.number(name) {
                Some(nr) => numbers.push((name.as_str(), nr)),
                None if !skipped.contains(name) => skipped.push(name.clone()),
                None => {}
            }
        }
        let verdict = rule.action.return_value(rule.errno)?;
        rules.push(Resolved {
            rule,
            numbers,
            verdict,
        });
    }
    let named: HashSet<u32> = rules
        .iter()
        .flat_map(|r| r.numbers.iter().map(|&(_, nr)| nr))
        .collect();
    let enosys = bpf::RET_ERRNO | libc::ENOSYS as u32;
    let enosys_above = named
        .iter()
        .max()
        .copied()
        .filter(|_| !profile.default_action.lets_calls_run() && default_return != enosys);

    let kill = bpf::RET_KILL_PROCESS;
    let mut program = vec![
        Insn::load(bpf::OFFSET_ARCH),
        Insn::jump(bpf::JMP_JEQ_K, table.audit_arch, 1, 0),
        Insn::ret(kill),
        Insn::load(bpf::OFFSET_NR),
    ];
    if let Some(foreign) = table.foreign_from {
        program.push(Insn::jump(bpf::JMP_JGE_K, foreign, 0, 1));
        program.push(Insn::ret(kill));
    }
    if let Some(max) = enosys_above {
        program.push(Insn::jump(bpf::JMP_JGT_K, max, 0, 1));
        program.push(Insn::ret(enosys));
    }
    emit_rules(&rules, &mut program)?;
    program.push(Insn::ret(default_return));

    if program.len() > bpf::MAX_INSNS {
        return Err(SeccompError::TooLong {
            len: program.len(),
            max: bpf::MAX_INSNS,
        });
    }
    bpf::verify(&program).map_err(|m| SeccompError::Malformed {
        index: m.index,
        reason: m.reason,
    })?;
    Ok(Filter {
        program,
        flags,
        skipped,
        default_return,
        enosys_above,
        rules: rules.iter().filter(|r| !r.numbers.is_empty()).count(),
        syscalls: named.len(),
    })
}

/// The rules, in order. `A` holds the syscall number on entry; a rule with conditions
/// overwrites it with argument words, so the next rule reloads it.
fn emit_rules(rules: &[Resolved], program: &mut Vec<Insn>) -> Result<(), SeccompError> {
    // Numbers an earlier rule without conditions already decides: later rules for them
    // could never match, so they are left out.
    let mut decided: HashSet<u32> = HashSet::new();
    let mut a_holds_nr = true;
    for resolved in rules {
        let mut numbers: Vec<(&str, u32)> = Vec::new();
        for &(name, nr) in &resolved.numbers {
            if !decided.contains(&nr) && !numbers.iter().any(|&(_, n)| n == nr) {
                numbers.push((name, nr));
            }
        }
        if resolved.rule.args.is_empty() {
            // `jeq nr_i` for each, all jumping to one shared `ret` after the run; a
            // conditional jump reaches 255 instructions, so a run has at most 255.
            for run in numbers.chunks(255) {
                if !a_holds_nr {
                    program.push(Insn::load(bpf::OFFSET_NR));
                    a_holds_nr = true;
                }
                for (i, &(_, nr)) in run.iter().enumerate() {
                    let to_ret = (run.len() - 1 - i) as u8;
                    let past_ret = u8::from(i == run.len() - 1);
                    program.push(Insn::jump(bpf::JMP_JEQ_K, nr, to_ret, past_ret));
                }
                program.push(Insn::ret(resolved.verdict));
            }
            decided.extend(numbers.iter().map(|&(_, nr)| nr));
            continue;
        }
        for &(name, nr) in &numbers {
            let mut block = Block::new();
            if !a_holds_nr {
                block.push(Insn::load(bpf::OFFSET_NR));
            }
            block.jump_or_exit(bpf::JMP_JEQ_K, nr, Exit::WhenFalse);
            for arg in &resolved.rule.args {
                bpf::compare(&mut block, arg.index, arg.op, arg.value, arg.value_two);
            }
            block.push(Insn::ret(resolved.verdict));
            let insns = block
                .finish()
                .ok_or_else(|| SeccompError::TooManyConditions {
                    syscall: name.to_owned(),
                    conditions: resolved.rule.args.len(),
                })?;
            program.extend(insns);
            a_holds_nr = false;
        }
    }
    Ok(())
}
// ANCHOR_END: compile

fn check_architectures(listed: &[String], table: &SyscallTable) -> Result<(), SeccompError> {
    if let Some(name) = listed.iter().find(|n| !ARCHITECTURES.contains(&n.as_str())) {
        return Err(SeccompError::UnknownArch { name: name.clone() });
    }
    let native = |name: &String| name == table.oci_name || name == "SCMP_ARCH_NATIVE";
    if !listed.is_empty() && !listed.iter().any(native) {
        return Err(SeccompError::ArchNotListed {
            listed: listed.join(", "),
            native: table.oci_name,
        });
    }
    Ok(())
}

fn parse_flags(names: &[String]) -> Result<u32, SeccompError> {
    names.iter().try_fold(0, |flags, name| {
        FLAGS
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, bit)| flags | bit)
            .ok_or_else(|| SeccompError::UnknownFlag { name: name.clone() })
    })
}

// ANCHOR: install
/// Load `filter` into the calling thread with seccomp(2) `SECCOMP_SET_MODE_FILTER` and
/// its flags. From then on every syscall of this thread and of what it forks or execs
/// runs through the filter; it cannot be removed.
///
/// The kernel takes the filter only from a thread that has set `no_new_privs`
/// (`prctl(PR_SET_NO_NEW_PRIVS)`) or holds `CAP_SYS_ADMIN` in its user namespace (else
/// `EACCES`): otherwise a filter could make a setuid program fail in ways that serve an
/// attacker. Call it as late as possible, just before exec, in the single-threaded
/// child: everything after it must get past the filter, exec included. Nothing is
/// allocated here: the kernel copies the program out of `filter`.
///
/// With `SECCOMP_FILTER_FLAG_TSYNC`, a thread that cannot be synchronised makes the call
/// fail with its id, reported here as `ESRCH`.
pub fn install(filter: &Filter) -> Result<(), Errno> {
    if filter.program.is_empty() {
        return Err(Errno::EINVAL);
    }
    let len = u16::try_from(filter.program.len()).map_err(|_| Errno::EINVAL)?;
    let program = libc::sock_fprog {
        len,
        filter: filter
            .program
            .as_ptr()
            .cast::<libc::sock_filter>()
            .cast_mut(),
    };
    // SAFETY: `Insn` has `sock_filter`'s layout (asserted in bpf.rs), `program` points at
    // `len` of them that outlive the call, and the kernel only reads them.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(filter.flags),
            &raw const program,
        )
    };
    match rc {
        0 => Ok(()),
        tid if tid > 0 => Err(Errno::ESRCH),
        _ => Err(Errno::last()),
    }
}
// ANCHOR_END: install

#[cfg(test)]
mod tests {
    use super::bpf::interpret::{SeccompData, run};
    use super::bpf::{RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS, RET_TRAP};
    use super::*;

    const EPERM: u32 = libc::EPERM as u32;
    const ENOSYS: u32 = libc::ENOSYS as u32;

    fn table() -> &'static SyscallTable {
        syscalls::native().expect("the tests run on x86_64 or aarch64")
    }

    fn nr(name: &str) -> u32 {
        table().number(name).expect(name)
    }

    fn call(name: &str, args: [u64; 6]) -> SeccompData {
        SeccompData {
            nr: nr(name),
            arch: table().audit_arch,
            args,
        }
    }

    /// The verdict for `name(args...)` under `filter`.
    fn verdict(filter: &Filter, name: &str, args: &[u64]) -> u32 {
        let mut all = [0; 6];
        all[..args.len()].copy_from_slice(args);
        run(&filter.program, &call(name, all))
    }

    fn rule(names: &[&str], action: Action, errno: Option<u32>) -> SyscallRule {
        SyscallRule {
            names: names.iter().map(|n| n.to_string()).collect(),
            action,
            errno,
            args: Vec::new(),
        }
    }

    fn arg(index: u32, op: Op, value: u64) -> ArgCondition {
        ArgCondition {
            index,
            value,
            value_two: 0,
            op,
        }
    }

    fn profile(default_action: Action, syscalls: Vec<SyscallRule>) -> Profile {
        Profile {
            default_action,
            syscalls,
            ..Profile::default()
        }
    }

    fn errno(value: u32) -> u32 {
        RET_ERRNO | value
    }

    #[test]
    fn an_unlisted_syscall_gets_the_default_errno() {
        let allowed = rule(&["read", "exit_group"], Action::Allow, None);
        let mut p = profile(Action::Errno, vec![allowed]);
        p.default_errno = Some(38);
        let filter = compile(&p).unwrap();
        assert_eq!(verdict(&filter, "read", &[]), RET_ALLOW);
        assert_eq!(verdict(&filter, "getpid", &[]), errno(38));
        p.default_errno = None;
        assert_eq!(
            verdict(&compile(&p).unwrap(), "getpid", &[]),
            errno(EPERM),
            "EPERM when the profile gives no errno"
        );
    }

    #[test]
    fn an_allow_list_allows_what_it_lists_and_nothing_else() {
        let names = ["read", "write", "exit_group", "execve"];
        let filter = compile(&profile(
            Action::KillProcess,
            vec![rule(&names, Action::Allow, None)],
        ))
        .unwrap();
        for name in names {
            assert_eq!(verdict(&filter, name, &[]), RET_ALLOW, "{name}");
        }
        assert_eq!(verdict(&filter, "mount", &[]), RET_KILL_PROCESS);
    }

    #[test]
    fn a_rule_returns_its_errno_or_eperm() {
        let filter = compile(&profile(
            Action::Allow,
            vec![
                rule(&["mount"], Action::Errno, Some(13)),
                rule(&["umount2"], Action::Errno, None),
                rule(&["reboot"], Action::Trap, None),
            ],
        ))
        .unwrap();
        assert_eq!(verdict(&filter, "mount", &[]), errno(13));
        assert_eq!(verdict(&filter, "umount2", &[]), errno(EPERM));
        assert_eq!(verdict(&filter, "reboot", &[]), RET_TRAP);
        assert_eq!(verdict(&filter, "read", &[]), RET_ALLOW);
    }

    /// Whether `op` with `value` lets `arg` through, compiled into a whole filter.
    fn op_allows(op: Op, value: u64, value_two: u64, arg_value: u64) -> bool {
        let mut allow = rule(&["ioctl"], Action::Allow, None);
        allow.args = vec![ArgCondition {
            index: 1,
            value,
            value_two,
            op,
        }];
        let filter = compile(&profile(Action::Errno, vec![allow])).unwrap();
        verdict(&filter, "ioctl", &[0, arg_value]) == RET_ALLOW
    }

    #[test]
    fn every_op_compares_all_64_bits_unsigned() {
        let (small, big) = (5u64, 0x1_0000_0005u64);
        // (op, value, arg, holds): the high words differ, or they are equal.
        let cases = [
            (Op::Equal, small, small, true),
            (Op::Equal, small, big, false),
            (Op::Equal, big, big, true),
            (Op::NotEqual, small, big, true),
            (Op::NotEqual, big, big, false),
            (Op::NotEqual, big, big + 1, true),
            (Op::LessThan, big, small, true),
            (Op::LessThan, small, big, false),
            (Op::LessThan, big, big, false),
            (Op::LessOrEqual, big, big, true),
            (Op::LessOrEqual, small, big, false),
            (Op::LessOrEqual, big, small + 1, true),
            (Op::GreaterOrEqual, small, big, true),
            (Op::GreaterOrEqual, big, small, false),
            (Op::GreaterOrEqual, big, big, true),
            (Op::GreaterThan, small, big, true),
            (Op::GreaterThan, big, big, false),
            (Op::GreaterThan, big, small + 0x10, false),
            (Op::GreaterThan, small, u64::MAX, true),
        ];
        for (op, value, arg_value, holds) in cases {
            assert_eq!(
                op_allows(op, value, 0, arg_value),
                holds,
                "{arg_value:#x} {op:?} {value:#x}"
            );
        }
    }

    #[test]
    fn masked_equal_masks_then_compares_both_halves() {
        // (arg & 0xff0000000f) == 0x0100000005
        let (mask, want) = (0xff_0000_000f, 0x01_0000_0005);
        assert!(op_allows(Op::MaskedEqual, mask, want, 0x01_0000_00f5));
        assert!(!op_allows(Op::MaskedEqual, mask, want, 0x02_0000_00f5));
        assert!(!op_allows(Op::MaskedEqual, mask, want, 0x01_0000_00f6));
    }

    #[test]
    fn all_conditions_of_a_rule_must_hold_even_on_one_argument() {
        let mut socket = rule(&["socket"], Action::Errno, Some(22));
        socket.args = vec![arg(0, Op::Equal, 16), arg(2, Op::Equal, 9)];
        let filter = compile(&profile(Action::Allow, vec![socket])).unwrap();
        assert_eq!(verdict(&filter, "socket", &[16, 3, 9]), errno(22));
        assert_eq!(verdict(&filter, "socket", &[16, 3, 0]), RET_ALLOW);
        assert_eq!(verdict(&filter, "socket", &[2, 1, 9]), RET_ALLOW);

        // Two conditions on argument 1: 2 <= arg <= 5 (runc would OR them).
        let mut range = rule(&["ioctl"], Action::Allow, None);
        range.args = vec![arg(1, Op::GreaterOrEqual, 2), arg(1, Op::LessOrEqual, 5)];
        let filter = compile(&profile(Action::Errno, vec![range])).unwrap();
        assert_eq!(verdict(&filter, "ioctl", &[0, 3]), RET_ALLOW);
        assert_eq!(verdict(&filter, "ioctl", &[0, 1]), errno(EPERM));
        assert_eq!(
            verdict(&filter, "ioctl", &[0, 6]),
            errno(EPERM),
            "AND, not OR"
        );
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let mut netlink_audit = rule(&["socket"], Action::Errno, Some(22));
        netlink_audit.args = vec![arg(0, Op::Equal, 16)];
        let filter = compile(&profile(
            Action::Errno,
            vec![
                netlink_audit,
                rule(&["socket", "read"], Action::Allow, None),
                rule(&["read"], Action::Errno, Some(5)),
            ],
        ))
        .unwrap();
        assert_eq!(verdict(&filter, "socket", &[16]), errno(22));
        assert_eq!(verdict(&filter, "socket", &[2]), RET_ALLOW);
        assert_eq!(
            verdict(&filter, "read", &[]),
            RET_ALLOW,
            "the later rule is dead"
        );
    }

    #[test]
    fn names_this_architecture_lacks_are_skipped_and_listed() {
        let known = compile(&profile(
            Action::Errno,
            vec![rule(&["read"], Action::Allow, None)],
        ))
        .unwrap();
        let filter = compile(&profile(
            Action::Errno,
            vec![
                rule(&["_llseek", "read", "mmap2"], Action::Allow, None),
                rule(&["clock_gettime64", "_llseek"], Action::KillProcess, None),
            ],
        ))
        .unwrap();
        assert_eq!(filter.skipped, ["_llseek", "mmap2", "clock_gettime64"]);
        assert_eq!(
            filter.program, known.program,
            "a rule of unknown names adds nothing"
        );
        assert_eq!((filter.rules, filter.syscalls), (1, 1));
        assert_eq!(verdict(&filter, "read", &[]), RET_ALLOW);
    }

    #[test]
    fn a_call_through_another_abi_kills_the_process() {
        let filter = compile(&profile(
            Action::Allow,
            vec![rule(&["mount"], Action::Errno, None)],
        ))
        .unwrap();
        let i386 = SeccompData {
            nr: 3,
            arch: 0x4000_0003,
            args: [0; 6],
        };
        assert_eq!(run(&filter.program, &i386), RET_KILL_PROCESS);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn an_x32_syscall_number_kills_the_process() {
        let filter = compile(&profile(
            Action::Allow,
            vec![rule(&["execve"], Action::Errno, None)],
        ))
        .unwrap();
        let mut x32_execve = call("read", [0; 6]);
        x32_execve.nr = 0x4000_0000 | 520; // x32's execve
        assert_eq!(run(&filter.program, &x32_execve), RET_KILL_PROCESS);
        x32_execve.nr = 0x4000_0000 | 59;
        assert_eq!(run(&filter.program, &x32_execve), RET_KILL_PROCESS);
        assert_eq!(verdict(&filter, "execve", &[]), errno(EPERM));
    }

    #[test]
    fn syscalls_newer_than_the_profile_get_enosys_unless_the_default_allows() {
        let filter = compile(&profile(
            Action::Errno,
            vec![rule(&["read", "openat"], Action::Allow, None)],
        ))
        .unwrap();
        let highest = nr("read").max(nr("openat"));
        assert_eq!(filter.enosys_above, Some(highest));
        let mut newer = call("read", [0; 6]);
        newer.nr = highest + 1;
        assert_eq!(run(&filter.program, &newer), errno(ENOSYS));
        newer.nr = highest - 1;
        assert_eq!(
            run(&filter.program, &newer),
            errno(EPERM),
            "older: the default"
        );

        let allowing = compile(&profile(
            Action::Allow,
            vec![rule(&["read"], Action::Errno, None)],
        ));
        assert_eq!(allowing.unwrap().enosys_above, None);
        let mut enosys_default = profile(Action::Errno, vec![rule(&["read"], Action::Allow, None)]);
        enosys_default.default_errno = Some(ENOSYS);
        assert_eq!(compile(&enosys_default).unwrap().enosys_above, None);
    }

    #[test]
    fn four_hundred_names_with_conditions_fit_and_every_jump_is_valid() {
        let names: Vec<&str> = table().entries.iter().map(|&(name, _)| name).collect();
        let mut rules = Vec::new();
        // One unconditional rule naming everything but a few, and per-syscall rules with
        // conditions, 400+ names in all.
        rules.push(rule(&names[20..], Action::Allow, None));
        for name in &names[..20] {
            let mut conditional = rule(&[name], Action::Errno, Some(1));
            conditional.args = vec![arg(0, Op::NotEqual, 0x1_0000_0000), arg(1, Op::LessThan, 7)];
            rules.push(conditional);
        }
        rules.push(rule(&names[..40], Action::Log, None));
        let filter = compile(&profile(Action::KillProcess, rules)).unwrap();
        assert!(
            filter.program.len() < bpf::MAX_INSNS,
            "{}",
            filter.program.len()
        );
        assert_eq!(bpf::verify(&filter.program), Ok(()));
        for (i, insn) in filter.program.iter().enumerate() {
            let left = filter.program.len() - i - 1;
            if insn.code == bpf::JMP_JA {
                assert!((insn.k as usize) < left, "ja at {i}");
            } else if insn.code & 0x07 == 0x05 {
                assert!(usize::from(insn.jt.max(insn.jf)) < left, "jump at {i}");
            }
        }
        for &(name, _) in &table().entries[20..] {
            assert_eq!(verdict(&filter, name, &[]), RET_ALLOW, "{name}");
        }
        let first = names[0];
        assert_eq!(verdict(&filter, first, &[1, 3]), errno(1));
        assert_eq!(verdict(&filter, first, &[0x1_0000_0000, 3]), bpf::RET_LOG);
    }

    #[test]
    fn a_program_past_4096_instructions_is_refused() {
        let mut rules = Vec::new();
        for &(name, _) in table().entries {
            let mut conditional = rule(&[name], Action::Allow, None);
            conditional.args = (0..6).map(|i| arg(i, Op::GreaterThan, 1)).collect();
            rules.push(conditional);
        }
        let err = compile(&profile(Action::Errno, rules)).unwrap_err();
        assert!(matches!(err, SeccompError::TooLong { len, max: 4096 } if len > 4096));
        assert!(err.to_string().contains("BPF_MAXINSNS"), "{err}");
    }

    #[test]
    fn a_rule_too_long_to_jump_over_is_refused() {
        let mut huge = rule(&["ioctl"], Action::Allow, None);
        huge.args = (0..70)
            .map(|i| arg(i % 6, Op::NotEqual, i.into()))
            .collect();
        let err = compile(&profile(Action::Errno, vec![huge])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the seccomp rule for ioctl has 70 argument conditions: too many to jump over in \
             classic BPF (at most 255 instructions); split the rule"
        );
    }

    #[test]
    fn profiles_nutshell_cannot_honour_are_refused_with_the_reason() {
        let base = || profile(Action::Errno, vec![rule(&["read"], Action::Allow, None)]);
        let mut notify = base();
        notify.syscalls[0].action = Action::Notify;
        assert_eq!(
            compile(&notify).unwrap_err().to_string(),
            "the SCMP_ACT_NOTIFY action is not implemented: nutshell has no seccomp notify agent"
        );
        let mut listener = base();
        listener.listener_path = Some("/run/agent.sock".into());
        assert!(matches!(
            compile(&listener),
            Err(SeccompError::NotImplemented { .. })
        ));
        let mut index = base();
        index.syscalls[0].args = vec![arg(6, Op::Equal, 0)];
        assert_eq!(
            compile(&index).unwrap_err(),
            SeccompError::ArgIndex {
                syscalls: "read".into(),
                index: 6
            }
        );
        let mut flag = base();
        flag.flags = vec!["SECCOMP_FILTER_FLAG_NEW_LISTENER".into()];
        assert!(matches!(
            compile(&flag),
            Err(SeccompError::UnknownFlag { .. })
        ));
        let mut errno = base();
        errno.default_errno = Some(70_000);
        assert_eq!(
            compile(&errno).unwrap_err(),
            SeccompError::ErrnoOutOfRange { errno: 70_000 }
        );
        let mut typo = base();
        typo.architectures = vec!["SCMP_ARCH_AMD64".into()];
        assert!(matches!(
            compile(&typo),
            Err(SeccompError::UnknownArch { .. })
        ));
    }

    #[test]
    fn a_profile_for_other_architectures_only_is_refused() {
        let mut p = profile(Action::Errno, vec![]);
        p.architectures = vec!["SCMP_ARCH_PPC64LE".into(), "SCMP_ARCH_S390X".into()];
        let native = table().oci_name;
        assert_eq!(
            compile(&p).unwrap_err().to_string(),
            format!(
                "the seccomp profile is for SCMP_ARCH_PPC64LE, SCMP_ARCH_S390X, not this \
                 machine's {native}: none of its rules would apply; add {native} to its \
                 architectures"
            )
        );
        p.architectures.push(native.into());
        assert!(compile(&p).is_ok());
        p.architectures = vec!["SCMP_ARCH_NATIVE".into()];
        assert!(compile(&p).is_ok());
    }

    #[test]
    fn oci_names_map_to_actions_ops_and_flags() {
        assert_eq!(Action::from_oci("SCMP_ACT_KILL"), Some(Action::Kill));
        assert_eq!(
            Action::from_oci("SCMP_ACT_KILL_PROCESS"),
            Some(Action::KillProcess)
        );
        assert_eq!(Action::from_oci("SCMP_ACT_ERRNO"), Some(Action::Errno));
        assert_eq!(Action::from_oci("SCMP_ACT_PERMIT"), None);
        assert_eq!(Op::from_oci("SCMP_CMP_MASKED_EQ"), Some(Op::MaskedEqual));
        assert_eq!(Op::from_oci("SCMP_CMP_NE"), Some(Op::NotEqual));
        assert_eq!(Op::from_oci("SCMP_CMP_BETWEEN"), None);
        let names = |list: &[&str]| list.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_flags(&names(&[
                "SECCOMP_FILTER_FLAG_TSYNC",
                "SECCOMP_FILTER_FLAG_LOG"
            ])),
            Ok(3)
        );
        assert_eq!(
            parse_flags(&names(&["SECCOMP_FILTER_FLAG_SPEC_ALLOW"])),
            Ok(4)
        );
    }

    #[test]
    fn the_filter_reads_as_one_line() {
        let mut p = profile(
            Action::Errno,
            vec![
                rule(&["read", "write", "_llseek"], Action::Allow, None),
                rule(&["mount"], Action::Errno, Some(1)),
            ],
        );
        p.default_errno = Some(38);
        p.flags = vec!["SECCOMP_FILTER_FLAG_LOG".into()];
        let filter = compile(&p).unwrap();
        assert_eq!(
            filter.to_string(),
            format!(
                "a seccomp filter of {} BPF instructions: default ERRNO(38), 2 rules for 3 \
                 syscalls, 1 unknown syscall skipped, flags LOG",
                filter.program.len()
            )
        );
    }

    #[test]
    fn profile_and_filter_survive_serde() {
        let mut socket = rule(&["socket"], Action::Errno, Some(22));
        socket.args = vec![arg(0, Op::MaskedEqual, 16)];
        let p = profile(Action::KillThread, vec![socket]);
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.contains(r#""default_action":"kill_thread""#), "{json}");
        assert!(json.contains(r#""op":"masked_equal""#), "{json}");
        assert_eq!(serde_json::from_str::<Profile>(&json).unwrap(), p);
        let filter = compile(&p).unwrap();
        let json = serde_json::to_string(&filter).unwrap();
        assert_eq!(serde_json::from_str::<Filter>(&json).unwrap(), filter);
        let unknown = r#"{"default_action":"allow","default_errno_ret":1}"#;
        assert!(serde_json::from_str::<Profile>(unknown).is_err());
    }

    fn podman() -> Profile {
        let json = include_str!("../../tests/fixtures/seccomp-podman.json");
        let oci: oci_spec::runtime::LinuxSeccomp = serde_json::from_str(json).unwrap();
        Profile::from_oci(&oci).unwrap()
    }

    #[test]
    fn podmans_profile_converts_from_oci() {
        let p = podman();
        assert_eq!(p.default_action, Action::Errno);
        assert_eq!(p.default_errno, Some(38));
        assert_eq!(
            p.architectures,
            ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
        );
        assert_eq!(p.syscalls.len(), 22);
        let socket = &p.syscalls[18];
        assert_eq!(socket.errno, Some(22));
        assert_eq!(socket.args, [arg(0, Op::Equal, 16), arg(2, Op::Equal, 9)]);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn podmans_profile_allows_the_basics_and_answers_enosys_otherwise() {
        let filter = compile(&podman()).unwrap();
        assert!(filter.program.len() < 600, "{filter}");
        for name in ["read", "write", "execve", "openat", "clone3"] {
            assert_eq!(verdict(&filter, name, &[]), RET_ALLOW, "{name}");
        }
        // add_key is in no rule: the default, ERRNO(ENOSYS).
        assert_eq!(verdict(&filter, "add_key", &[]), errno(38));
        assert_eq!(verdict(&filter, "kexec_load", &[]), errno(1));
        // socket(AF_NETLINK, _, NETLINK_AUDIT) fails with EINVAL; other sockets run.
        assert_eq!(verdict(&filter, "socket", &[16, 3, 9]), errno(22));
        assert_eq!(verdict(&filter, "socket", &[2, 1, 0]), RET_ALLOW);
        assert_eq!(verdict(&filter, "personality", &[8]), RET_ALLOW);
        assert_eq!(verdict(&filter, "personality", &[0xffff_ffff]), RET_ALLOW);
        assert_eq!(verdict(&filter, "personality", &[1]), errno(38));
        assert_eq!(filter.enosys_above, None, "the default already is ENOSYS");
        assert!(filter.skipped.contains(&"_llseek".to_owned()));
        assert_eq!(
            filter.to_string(),
            format!(
                "a seccomp filter of {} BPF instructions: default ERRNO(38), 22 rules for {} \
                 syscalls, {} unknown syscalls skipped",
                filter.program.len(),
                filter.syscalls,
                filter.skipped.len()
            )
        );
    }

    #[test]
    fn install_refuses_an_empty_program_and_the_tests_install_nothing() {
        // The test process must stay unfiltered: only this error path of `install` runs
        // here, and it returns before asking the kernel. Real installs are tested as root
        // in a container.
        let filters = || {
            std::fs::read_to_string("/proc/self/status")
                .unwrap()
                .lines()
                .find(|l| l.starts_with("Seccomp:"))
                .map(str::to_owned)
        };
        let before = filters();
        let empty = Filter {
            program: Vec::new(),
            flags: 0,
            skipped: Vec::new(),
            default_return: RET_ALLOW,
            enosys_above: None,
            rules: 0,
            syscalls: 0,
        };
        assert_eq!(install(&empty), Err(Errno::EINVAL));
        assert_eq!(filters(), before);
    }
}
