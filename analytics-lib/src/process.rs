//! This process as the system sees it.

/// Resident memory figures of this process from Linux `/proc/self/status`
/// (`field`: `"VmRSS:"`, `"VmHWM:"`, …), in bytes; `None` elsewhere.
pub fn proc_status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
