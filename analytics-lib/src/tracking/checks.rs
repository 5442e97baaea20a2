//! What is checked and encoded before anything is sent: the server's
//! address, keys and values of a run, the artifact files; the encodings
//! (percent-encoding, base64) come from the `percent-encoding` and
//! `base64` crates, the address is parsed by `url`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::Value;

use super::*;

/// A ureq error in words, with a hint for the usual causes.
pub(super) fn transport_message(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!("connection refused ({io}): is the MLflow server running at this address?")
        }
        ureq::Error::ConnectionFailed => {
            "connection failed: is the MLflow server running at this address?".into()
        }
        ureq::Error::HostNotFound => "host not found: check MLFLOW_TRACKING_URI".into(),
        ureq::Error::Timeout(t) => {
            format!("timed out ({t}); raise MLFLOW_HTTP_REQUEST_TIMEOUT if the server is slow")
        }
        other => other.to_string(),
    }
}

pub(super) struct ParsedUri {
    pub(super) base: String,
    pub(super) userinfo: Option<(String, Option<String>)>,
}

/// Check `http(s)://[user[:password]@]host[:port][/prefix]` (parsed by
/// the `url` crate); the base keeps no credentials, query, fragment nor
/// trailing `/`.
pub(super) fn parse_uri(uri: &str) -> Result<ParsedUri> {
    let bad = |why: &'static str| TrackingError::Config {
        variable: "MLFLOW_TRACKING_URI",
        expected: why,
        found: quote(&redact_uri(uri)),
    };
    let url = url::Url::parse(uri.trim()).map_err(|_| {
        bad("http://host:port or https://host:port (file stores and databricks are not supported)")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(
            "an http:// or https:// address of an MLflow tracking server (file stores and databricks are not supported)",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("an address without query (?) or fragment (#)"));
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("a host name, e.g. http://127.0.0.1:5000"))?;
    let authority = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let userinfo = (!url.username().is_empty()).then(|| {
        (
            percent_decode(url.username()),
            url.password().map(percent_decode),
        )
    });
    Ok(ParsedUri {
        base: format!(
            "{}://{authority}{}",
            url.scheme(),
            url.path().trim_end_matches('/')
        ),
        userinfo,
    })
}

/// The URI with any `user:password@` replaced by `***@`.
pub(super) fn redact_uri(uri: &str) -> String {
    if let Some((scheme, rest)) = uri.split_once("://") {
        let end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..end].rfind('@') {
            return format!("{scheme}://***@{}", &rest[at + 1..]);
        }
    }
    uri.to_string()
}

/// The proxy path of a run's artifact location: `mlflow-artifacts:/1/abc/artifacts`
/// and `mlflow-artifacts://host:port/1/abc/artifacts` give `1/abc/artifacts`.
pub(super) fn proxied_root(artifact_uri: &str) -> Option<String> {
    let rest = artifact_uri.strip_prefix("mlflow-artifacts:")?;
    let path = match rest.strip_prefix("//") {
        Some(after_host) => &after_host[after_host.find('/')?..],
        None => rest,
    };
    let path = path.trim_matches('/');
    (!path.is_empty()).then(|| path.to_string())
}

pub(super) fn check_key(kind: &str, key: &str) -> Result<()> {
    let ok_chars = key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ' | '/' | ':'));
    if key.is_empty()
        || key.len() > MAX_KEY_LEN
        || !ok_chars
        || key.contains("..")
        || key.starts_with('/')
    {
        return Err(TrackingError::Invalid {
            field: format!("{kind} key"),
            expected: "1 to 250 characters among letters, digits, _ - . : / and space, not starting with / nor containing ..",
            found: quote(key),
        });
    }
    Ok(())
}

pub(super) fn check_record(record: &RunRecord) -> Result<()> {
    for (k, v) in &record.params {
        check_key("param", k)?;
        if v.chars().count() > MAX_PARAM_VALUE_LEN {
            return Err(TrackingError::Invalid {
                field: format!("param {k:?}"),
                expected: "a value of at most 6000 characters",
                found: format!("{} characters", v.chars().count()),
            });
        }
    }
    for (k, v) in &record.tags {
        check_key("tag", k)?;
        if v.chars().count() > MAX_TAG_VALUE_LEN {
            return Err(TrackingError::Invalid {
                field: format!("tag {k:?}"),
                expected: "a value of at most 8000 characters",
                found: format!("{} characters", v.chars().count()),
            });
        }
    }
    for (k, v) in &record.metrics {
        check_key("metric", k)?;
        if !v.is_finite() {
            return Err(TrackingError::Invalid {
                field: format!("metric {k:?}"),
                expected: "a finite number",
                found: v.to_string(),
            });
        }
    }
    Ok(())
}

/// Every file to upload, as (artifact path, local file), sorted; folders
/// are walked. Fails before any upload on a missing file or a name
/// given twice.
pub(super) fn collect_artifacts(paths: &[PathBuf]) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| TrackingError::Artifact {
            path: p.clone(),
            reason: format!("expected a readable file or folder; {e}"),
        })?;
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| TrackingError::Artifact {
                path: p.clone(),
                reason: "expected a path ending in a UTF-8 file or folder name".into(),
            })?
            .to_string();
        if meta.is_dir() {
            walk(p, &name, &mut out)?;
        } else {
            out.push((name, p.clone()));
        }
    }
    let mut seen = BTreeSet::new();
    for (name, path) in &out {
        if !seen.insert(name.as_str()) {
            return Err(TrackingError::Artifact {
                path: path.clone(),
                reason: format!("expected unique artifact names; {name:?} is given twice"),
            });
        }
    }
    out.sort();
    Ok(out)
}

pub(super) fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| TrackingError::Artifact {
        path: dir.to_path_buf(),
        reason: format!("cannot list the folder: {e}"),
    })?;
    for entry in entries {
        let entry = entry.map_err(|e| TrackingError::Artifact {
            path: dir.to_path_buf(),
            reason: format!("cannot list the folder: {e}"),
        })?;
        let path = entry.path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            return Err(TrackingError::Artifact {
                path,
                reason: "expected a UTF-8 file name".into(),
            });
        };
        let meta = std::fs::metadata(&path).map_err(|e| TrackingError::Artifact {
            path: path.clone(),
            reason: format!("cannot be read: {e}"),
        })?;
        let rel = format!("{prefix}/{name}");
        if meta.is_dir() {
            walk(&path, &rel, out)?;
        } else {
            out.push((rel, path));
        }
    }
    Ok(())
}

pub(super) fn str_field(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for key in path {
        cur = cur.get(key)?;
    }
    cur.as_str().map(str::to_string)
}

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// At most [`MAX_QUOTED`] characters of a server's text, on one line.
pub(super) fn quote(s: &str) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > MAX_QUOTED {
        let cut: String = one_line.chars().take(MAX_QUOTED).collect();
        format!("{cut}…")
    } else {
        one_line
    }
}

/// The characters a URL component keeps as they are (RFC 3986 unreserved).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// As [`COMPONENT`], keeping `/` too (artifact paths).
const PATH: &AsciiSet = &COMPONENT.remove(b'/');

/// Percent-encoding of everything but unreserved characters (and `/`
/// when `keep_slash`).
pub(super) fn encode(s: &str, keep_slash: bool) -> String {
    utf8_percent_encode(s, if keep_slash { PATH } else { COMPONENT }).to_string()
}

pub(super) fn percent_decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Standard base64 with padding (RFC 4648), for basic authentication.
pub(super) fn base64(input: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(input)
}
