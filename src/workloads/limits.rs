//! What chapter 5's container runs to meet its limits: busy threads, a memory hog, a
//! fork bomb.
//!
//! See also [fork(2)](https://man7.org/linux/man-pages/man2/fork.2.html),
//! [kill(2)](https://man7.org/linux/man-pages/man2/kill.2.html).

use std::thread;
use std::time::{Duration, Instant};

/// Print the container's view of /proc/self/cgroup: its cgroup namespace's.
fn print_cgroup_view() {
    println!("\n[inside]  /proc/self/cgroup (the cgroup namespace's view):");
    for line in std::fs::read_to_string("/proc/self/cgroup")
        .unwrap_or_default()
        .lines()
    {
        println!("[inside]    {line}");
    }
}

// ANCHOR: burn
/// The tour's body: `threads` threads that spin until `seconds` have passed.
pub fn burn(threads: u64, seconds: u64) -> i32 {
    print_cgroup_view();
    println!("[inside]  {threads} threads spin for {seconds} s, each wanting a whole CPU");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let spinners: Vec<_> = (0..threads)
        .map(|_| {
            thread::spawn(move || {
                let mut turns: u64 = 0;
                while Instant::now() < deadline {
                    turns = std::hint::black_box(turns.wrapping_add(1));
                }
            })
        })
        .collect();
    let finished = spinners.into_iter().filter_map(|s| s.join().ok()).count();
    i32::from(finished as u64 != threads)
}
// ANCHOR_END: burn

/// Chapter 12's pod: one thread that wants a whole CPU for `seconds`, quietly.
pub fn spin(seconds: u64) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut turns: u64 = 0;
    while Instant::now() < deadline {
        turns = std::hint::black_box(turns.wrapping_add(1));
    }
    0
}

// ANCHOR: allocate
/// The `--oom` body: allocate and touch memory 1 MiB at a time, up to four times the
/// limit. The OOM killer is meant to stop it first.
pub fn allocate(limit: u64) -> i32 {
    const CHUNK: usize = 1 << 20;
    let mib = limit >> 20;
    println!("\n[inside]  allocating 1 MiB at a time, writing every byte; the limit is {mib} MiB");
    let mut held: Vec<Vec<u8>> = Vec::new();
    for n in 1..=4 * mib {
        // vec![1; n] writes every byte: memory the kernel must really provide.
        held.push(std::hint::black_box(vec![1u8; CHUNK]));
        if n % 16 == 0 {
            println!("[inside]  {n} MiB");
        }
    }
    println!(
        "[inside]  still alive at {} MiB: the limit did not hold",
        4 * mib
    );
    1
}
// ANCHOR_END: allocate

// ANCHOR: fork_loop
/// The `--fork-bomb` body (the container's PID 1): fork children that only wait, twice
/// as many as the limit allows, counting which forks the kernel refuses; hold them for a
/// second, then kill the ones it started, and only those.
pub fn fork_loop(limit: u64) -> i32 {
    let mut started: Vec<libc::pid_t> = Vec::new();
    let mut refused = 0;
    for _ in 0..2 * limit {
        // SAFETY: the child only waits in pause(2) until it is killed.
        match unsafe { libc::fork() } {
            0 => loop {
                // SAFETY: pause(2) only waits for a signal.
                unsafe { libc::pause() };
            },
            -1 => refused += 1,
            child => started.push(child),
        }
    }
    println!(
        "\n[inside]  forks: {} started, {refused} refused (EAGAIN); with PID 1 that is {} tasks",
        started.len(),
        started.len() + 1
    );
    thread::sleep(Duration::from_secs(1));
    // Each child by its pid: kill(-1) would do it in one call from a PID namespace's
    // PID 1, and kill every process on the machine from anywhere else.
    for &child in &started {
        // SAFETY: sends a signal to a child this process forked and has not reaped.
        unsafe { libc::kill(child, libc::SIGKILL) };
    }
    while nix::sys::wait::wait().is_ok() {}
    0
}
// ANCHOR_END: fork_loop
