//! This process as the system sees it.

/// Resident memory figures of this process from Linux `/proc/self/status`
/// (`field`: `"VmRSS:"`, `"VmHWM:"`, …), in bytes; `None` elsewhere.
pub fn proc_status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// CPU time and minor page faults this process has used, from Linux
/// `/proc/self/stat` (in clock ticks of 10 ms: Linux's `USER_HZ` is 100).
/// A stage's share is the difference of two readings ([`CpuUse::since`]):
/// the system time is mostly the kernel zeroing pages touched for the first
/// time, which is what grows faster than the data on a VM.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct CpuUse {
    pub user_seconds: f64,
    pub system_seconds: f64,
    pub minor_faults: u64,
}

impl CpuUse {
    /// This process's use so far; `None` where `/proc/self/stat` cannot be
    /// read.
    pub fn now() -> Option<Self> {
        Self::parse(&std::fs::read_to_string("/proc/self/stat").ok()?)
    }

    /// The fields of a `/proc/<pid>/stat` line: after the command name
    /// (in parentheses, which may itself hold spaces and parentheses) come
    /// state, ppid, pgrp, session, tty, tpgid, flags, minflt, cminflt,
    /// majflt, cmajflt, utime, stime.
    fn parse(stat: &str) -> Option<Self> {
        let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
        let ticks =
            |i: usize| -> Option<f64> { Some(fields.get(i)?.parse::<u64>().ok()? as f64 / 100.0) };
        Some(CpuUse {
            minor_faults: fields.get(7)?.parse().ok()?,
            user_seconds: ticks(11)?,
            system_seconds: ticks(12)?,
        })
    }

    /// What was used between `earlier` and this reading.
    pub fn since(self, earlier: CpuUse) -> CpuUse {
        CpuUse {
            user_seconds: self.user_seconds - earlier.user_seconds,
            system_seconds: self.system_seconds - earlier.system_seconds,
            minor_faults: self.minor_faults.saturating_sub(earlier.minor_faults),
        }
    }
}

/// Run `f` and say how long it took: wall seconds, and the CPU it used
/// (`None` where the system does not say).
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, f64, Option<CpuUse>) {
    let t = std::time::Instant::now();
    let cpu = CpuUse::now();
    let out = f();
    let spent = CpuUse::now().zip(cpu).map(|(now, start)| now.since(start));
    (out, t.elapsed().as_secs_f64(), spent)
}

/// Whether the kernel may give this process transparent huge pages (Linux
/// `THP_enabled` in `/proc/self/status`, 6.x kernels); `None` where not
/// shown.
pub fn transparent_huge_pages_enabled() -> Option<bool> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("THP_enabled:"))?;
    match line.split_whitespace().nth(1)? {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    }
}

/// Turn transparent huge pages off for this process, unless
/// `MIMALLOC_ALLOW_THP` is set (mimalloc has then applied it at start-up:
/// `0` is this, `1` keeps them). Returns whether it turned them off.
///
/// mimalloc asks for huge pages on its arenas (`madvise(MADV_HUGEPAGE)`), so
/// on a kernel set to `madvise` most of a job's memory came in 2 MiB pages.
/// On a VM that hands free memory back to its host (free page reporting, as
/// the 2-core development and CI machines do) a free 2 MiB block is usually
/// one the host has taken back, and touching it costs the host 512 faults:
/// a program that only touches fresh memory took 5–9 s per GiB in huge
/// pages after a few seconds' pause, against 0.34–0.47 s per GiB in 4 KiB
/// pages, run after run. That was most of `load`'s time at 10 M lines in the
/// slow runs (9 s of system time), and why its cost per line swung 0.3–3.5×
/// from run to run. The pages 4 KiB faults take come from small free blocks,
/// which are rarely handed back; the price elsewhere is more faults (each
/// about a microsecond) and TLB misses, which did not show in the user time.
#[allow(unsafe_code)]
pub fn disable_transparent_huge_pages() -> bool {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        return false;
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl(PR_SET_THP_DISABLE, 1) takes plain integers and only
        // sets a flag of this process's address space.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1 as libc::c_ulong, 0, 0, 0) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::{CpuUse, disable_transparent_huge_pages, transparent_huge_pages_enabled};

    #[test]
    fn huge_pages_turned_off_show_so_in_the_process_status() {
        if disable_transparent_huge_pages() {
            assert_eq!(transparent_huge_pages_enabled(), Some(false));
        } else {
            // Left to mimalloc (the variable set) or not Linux.
            assert!(std::env::var_os("MIMALLOC_ALLOW_THP").is_some() || !cfg!(target_os = "linux"));
        }
    }

    #[test]
    fn reads_the_fields_after_a_command_name_with_spaces_and_parentheses() {
        let line = "4242 (a (b) c) R 1 4242 4242 0 -1 4194304 1234 0 7 0 250 37 0 0 20 0 3 0";
        let cpu = CpuUse::parse(line).expect("parsed");
        assert_eq!(cpu.minor_faults, 1234);
        assert_eq!(cpu.user_seconds, 2.5);
        assert_eq!(cpu.system_seconds, 0.37);
        assert_eq!(CpuUse::parse("4242 (no fields)"), None);
        let now = CpuUse::now().expect("Linux");
        let later = CpuUse::now().expect("Linux");
        assert!(later.since(now).user_seconds >= 0.0);
    }
}
