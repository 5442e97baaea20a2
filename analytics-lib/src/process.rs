//! This process as the system sees it.

/// The value of a field of Linux `/proc/self/status` (`field` with its
/// colon, e.g. `"VmRSS:"`): the word after it; `None` elsewhere.
fn proc_status(field: &str) -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    Some(line.split_whitespace().nth(1)?.to_string())
}

/// Resident memory figures of this process from Linux `/proc/self/status`
/// (`field`: `"VmRSS:"`, `"VmHWM:"`, …), in bytes; `None` elsewhere.
pub fn proc_status_bytes(field: &str) -> Option<u64> {
    let kb: u64 = proc_status(field)?.parse().ok()?;
    Some(kb * 1024)
}

/// CPU time and minor page faults this process has used, all its threads
/// together (`getrusage(RUSAGE_SELF)`, in microseconds: `/proc/self/stat`
/// counts 10 ms ticks, coarser than a 1 M-line stage's 30 ms).
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
    /// This process's use so far; `None` where the system does not say.
    #[allow(unsafe_code)]
    pub fn now() -> Option<Self> {
        #[cfg(unix)]
        {
            // SAFETY: getrusage fills the zeroed struct it is given and
            // reads nothing else.
            let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
            if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
                return None;
            }
            let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            Some(CpuUse {
                user_seconds: seconds(usage.ru_utime),
                system_seconds: seconds(usage.ru_stime),
                minor_faults: u64::try_from(usage.ru_minflt).unwrap_or(0),
            })
        }
        #[cfg(not(unix))]
        {
            None
        }
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
    match proc_status("THP_enabled:")?.as_str() {
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
/// On a VM that hands free memory back to its host (the 2-core development
/// and CI machines are Firecracker VMs whose kernel reports free 8 MiB
/// blocks: "Free page reporting enabled", `page_reporting_order=11`) a free
/// 2 MiB block is usually cut from one the host has taken back, and
/// touching it costs the host 512 faults:
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
    fn a_few_milliseconds_of_work_show_in_the_cpu_time() {
        let start = CpuUse::now().expect("Unix");
        // 5 ms of work on this thread: below /proc/self/stat's 10 ms tick.
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < std::time::Duration::from_millis(5) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let used = CpuUse::now().expect("Unix").since(start);
        // Microseconds, not 10 ms ticks (all threads count: other tests too).
        let micros = ((used.user_seconds + used.system_seconds) * 1e6).round() as u64;
        assert!(micros > 0 && !micros.is_multiple_of(10_000), "{used:?}");
    }
}
