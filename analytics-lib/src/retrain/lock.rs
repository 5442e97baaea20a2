//! One writer at a time in a models folder.
//!
//! The lock is an advisory `flock` on `<models>/.job.lock`, held for the
//! job's life. The operating system releases it when the holder exits, even
//! when killed with SIGKILL, so a lock left by a dead process is simply
//! taken over by the next job (the file, which names the holder, stays
//! behind; it is emptied on a normal exit). A second job started while the
//! first runs is refused at once with a message naming the holder.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The lock file's name in the models folder.
pub const LOCK_FILE: &str = ".job.lock";

/// Who holds (or last held) the lock.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LockHolder {
    pub pid: u32,
    pub job: String,
    /// RFC 3339, UTC.
    pub started_at: String,
}

/// Errors of [`JobLock::acquire`].
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another job is already writing into {models}: {holder} (lock file {path}); wait for it to finish, or stop it, then run again"
    )]
    Busy {
        models: PathBuf,
        path: PathBuf,
        holder: String,
    },
    #[error("cannot take the lock {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The held lock; released on drop (or when the process dies).
#[derive(Debug)]
pub struct JobLock {
    file: File,
    path: PathBuf,
    /// The dead job whose lock was taken over, if any.
    pub took_over: Option<LockHolder>,
}

fn describe(holder: Option<&LockHolder>) -> String {
    match holder {
        Some(h) => format!("`{}` (pid {}) started at {}", h.job, h.pid, h.started_at),
        None => "a job that has not written its name yet".into(),
    }
}

impl JobLock {
    /// Take the lock of `models` (created if missing) for `job`, or fail at
    /// once when a live process holds it.
    pub fn acquire(models: &Path, job: &str) -> Result<JobLock, LockError> {
        let path = models.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(models).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let mut text = String::new();
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let _ = file.read_to_string(&mut text);
                let holder: Option<LockHolder> = serde_json::from_str(&text).ok();
                return Err(LockError::Busy {
                    models: models.to_path_buf(),
                    path,
                    holder: describe(holder.as_ref()),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        // Ours now. A holder still named in the file died without releasing.
        let _ = file.read_to_string(&mut text);
        let took_over: Option<LockHolder> = serde_json::from_str(&text).ok();
        let me = LockHolder {
            pid: std::process::id(),
            job: job.to_string(),
            started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        let bytes = serde_json::to_vec(&me).map_err(|e| io(std::io::Error::other(e)))?;
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(&bytes))
            .and_then(|_| file.sync_all())
            .map_err(io)?;
        Ok(JobLock {
            file,
            path,
            took_over,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for JobLock {
    fn drop(&mut self) {
        // Empty the file so that the next job does not report a takeover;
        // closing the file releases the lock.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_then_admitted() {
        let tmp = tempfile::tempdir().expect("tmp");
        let first = JobLock::acquire(tmp.path(), "retrain").expect("first");
        let e = JobLock::acquire(tmp.path(), "train").expect_err("busy");
        let msg = e.to_string();
        assert!(msg.contains("`retrain`"), "{msg}");
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        drop(first);
        let again = JobLock::acquire(tmp.path(), "train").expect("again");
        assert!(again.took_over.is_none());
    }

    #[test]
    fn a_dead_holder_is_taken_over() {
        let tmp = tempfile::tempdir().expect("tmp");
        // What a killed job leaves: its name in an unlocked file.
        let dead = LockHolder {
            pid: 999_999,
            job: "retrain".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
        };
        std::fs::write(
            tmp.path().join(LOCK_FILE),
            serde_json::to_vec(&dead).expect("json"),
        )
        .expect("write");
        let lock = JobLock::acquire(tmp.path(), "retrain").expect("take over");
        assert_eq!(lock.took_over, Some(dead));
    }
}
