//! Background CPU priority for snapshot work, so that encoding and compressing a snapshot (tens
//! of CPU-milliseconds per 100k resources) yields the cores to queries and the apply loop.

/// The nice value snapshot threads run at (the lowest priority).
pub const BACKGROUND_NICE: i32 = 19;

/// Lowers the calling thread's CPU priority to [`BACKGROUND_NICE`]; threads it starts (the
/// snapshot's compression helpers, [`crate::compress_parts`]) inherit it. Only for threads that
/// do nothing else afterwards (an unprivileged process cannot raise it back), and only once
/// they hold no lock others wait for. Returns whether it took effect (always false off Linux).
pub fn lower_current_thread() -> bool {
    #[cfg(target_os = "linux")]
    {
        set_nice(BACKGROUND_NICE)
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn set_nice(nice: i32) -> bool {
    // SAFETY: setpriority takes plain integers and touches no memory of ours. On Linux the nice
    // value is per thread, and PRIO_PROCESS with who = 0 means the calling thread.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) == 0 }
}

#[cfg(all(test, target_os = "linux"))]
pub(crate) mod tests {
    use super::*;

    /// Field 19 of `/proc/thread-self/stat`: this thread's nice value.
    pub(crate) fn own_nice() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("procfs");
        // The command name (field 2) may contain spaces; fields after it follow the last ')'.
        let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
        rest.split_whitespace()
            .nth(16)
            .and_then(|f| f.parse().ok())
            .expect("nice field")
    }

    #[test]
    fn lowers_only_the_calling_thread() {
        let before = own_nice();
        let (lowered, nice) = std::thread::spawn(|| (lower_current_thread(), own_nice()))
            .join()
            .expect("thread");
        assert!(lowered);
        assert_eq!(nice, BACKGROUND_NICE);
        assert_eq!(own_nice(), before, "the caller's own priority is untouched");
    }
}
