//! Reading and writing the registry's files: only regular files of bounded
//! size are read (no link, FIFO or device, opened without blocking), manifest
//! entries must be plain names, and writes are all-or-nothing.

use std::path::Path;

use super::*;

/// `fnv1a64:<hex>` of a file's bytes (a regular file of at most
/// [`MAX_FILE_BYTES`]).
pub fn file_checksum(path: &Path) -> Result<String> {
    Ok(checksum(&read_regular(path, MAX_FILE_BYTES)?))
}

/// `fnv1a64:<hex>` of bytes, as manifests record them.
pub fn checksum(bytes: &[u8]) -> String {
    let mut h = Fnv64::default();
    h.write(bytes);
    format!("fnv1a64:{:016x}", h.finish())
}

/// What a file that is not a regular file is, for errors.
pub(super) fn file_kind(t: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a named pipe (FIFO)";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_block_device() || t.is_char_device() {
            return "a device";
        }
    }
    if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a folder"
    } else {
        "not a regular file"
    }
}

pub(super) fn check_regular(path: &Path, meta: &std::fs::Metadata, limit: u64) -> Result<()> {
    let expected = || format!("a regular file of at most {limit} bytes");
    if !meta.file_type().is_file() {
        return Err(RegistryError::BadFile {
            path: path.to_path_buf(),
            expected: expected(),
            found: file_kind(meta.file_type()).to_string(),
        });
    }
    if meta.len() > limit {
        return Err(RegistryError::BadFile {
            path: path.to_path_buf(),
            expected: expected(),
            found: format!("{} bytes", meta.len()),
        });
    }
    Ok(())
}

/// Read a file of the registry: a regular file (a symbolic link, a FIFO or
/// a device is refused without blocking) of at most `limit` bytes.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let meta = std::fs::symlink_metadata(path).map_err(io(path, "reading"))?;
    check_regular(path, &meta, limit)?;
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        // Swapped for a FIFO or a link since the check above: the open
        // neither blocks nor follows it, and the opened file is checked again.
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW);
    }
    let file = opts.open(path).map_err(io(path, "opening"))?;
    let meta = file.metadata().map_err(io(path, "reading"))?;
    check_regular(path, &meta, limit)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(io(path, "reading"))?;
    if bytes.len() as u64 > limit {
        return Err(RegistryError::BadFile {
            path: path.to_path_buf(),
            expected: format!("a regular file of at most {limit} bytes"),
            found: "a file that grew past that while it was read".into(),
        });
    }
    Ok(bytes)
}

/// Why `name` (a manifest entry) is not a plain file name of the version
/// folder, if it is not.
pub(super) fn unsafe_name(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("an empty name".into());
    }
    if name == "." || name == ".." {
        return Some(format!("`{name}`"));
    }
    if name.starts_with('/') || name.starts_with('\\') {
        return Some("an absolute path".into());
    }
    if name.contains(['/', '\\']) {
        return Some("a path with a folder separator".into());
    }
    if name.contains('\0') {
        return Some("a name with a NUL byte".into());
    }
    if name == MANIFEST {
        return Some("the manifest itself".into());
    }
    None
}

impl From<crate::atomic::WriteError> for RegistryError {
    fn from(e: crate::atomic::WriteError) -> Self {
        RegistryError::Io {
            path: e.path,
            action: e.action,
            source: e.source,
        }
    }
}

/// Fsync a folder (a rename in it then survives a crash).
pub(super) fn fsync_dir(dir: &Path) -> Result<()> {
    Ok(crate::atomic::sync_dir(dir)?)
}

/// Write all-or-nothing: temporary file beside it, fsync, rename, fsync of
/// the folder ([`crate::atomic::write`]).
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(crate::atomic::write(path, bytes)?)
}
