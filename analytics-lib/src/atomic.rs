//! All-or-nothing file writes: the one way the library replaces a model
//! file or a registry file. A temporary file beside the target is written
//! and fsynced, renamed over the target in one step, and the folder is
//! fsynced; on any failure the temporary file is removed and the target is
//! left as it was.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The step of [`write`] that failed and the file it was about; callers
/// turn it into their own error type.
#[derive(Debug)]
pub(crate) struct WriteError {
    pub path: PathBuf,
    pub action: &'static str,
    pub source: std::io::Error,
}

fn at(path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> WriteError {
    let path = path.to_path_buf();
    move |source| WriteError {
        path,
        action,
        source,
    }
}

/// Fsync a folder, so that a rename inside it survives a crash.
/// Directories can be opened read-only and fsynced on Unix; elsewhere the
/// sync is a no-op that may fail harmlessly (only the open is checked).
pub(crate) fn sync_dir(dir: &Path) -> Result<(), WriteError> {
    let f = std::fs::File::open(dir).map_err(at(dir, "opening for fsync"))?;
    let _ = f.sync_all();
    Ok(())
}

/// Replace `path` with `bytes`, all or nothing (see the module docs).
pub(crate) fn write(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&dir).map_err(at(&dir, "creating"))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(at(&tmp, "creating"))?;
        f.write_all(bytes)
            .and_then(|_| f.sync_all())
            .map_err(at(&tmp, "writing"))?;
        std::fs::rename(&tmp, path).map_err(at(path, "moving into place"))?;
        sync_dir(&dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
