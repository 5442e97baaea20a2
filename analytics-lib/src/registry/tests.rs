use super::*;

fn stage_with(reg: &Registry, model: &str, content: &str) -> VersionInfo {
    let s = reg.stage(model).expect("stage");
    std::fs::write(s.dir().join("a.bin"), content).expect("write");
    s.commit(VersionNotes::default()).expect("commit")
}

#[test]
fn version_ids_parse_and_print() {
    assert_eq!("v0003".parse::<VersionId>().expect("v0003"), VersionId(3));
    assert_eq!("12".parse::<VersionId>().expect("12"), VersionId(12));
    assert_eq!(VersionId(7).to_string(), "v0007");
    for bad in ["", "v", "x3", "v-1", "0", "v0000", "3.0"] {
        let e = bad.parse::<VersionId>().expect_err(bad).to_string();
        assert!(e.contains("vNNNN"), "{e}");
    }
}

#[test]
fn commit_promote_rollback_prune_recover() {
    let tmp = tempfile::tempdir().expect("tmp");
    let reg = Registry::open(tmp.path()).expect("open");
    assert_eq!(reg.live_version("m").expect("live"), None);
    let v1 = stage_with(&reg, "m", "one");
    let v2 = stage_with(&reg, "m", "two");
    assert_eq!((v1.id, v2.id), (VersionId(1), VersionId(2)));
    assert!(reg.verify("m", v2.id).is_ok());
    reg.promote("m", v1.id).expect("promote 1");
    let p = reg.promote("m", v2.id).expect("promote 2");
    assert_eq!((p.version, p.history.clone()), (v2.id, vec![v1.id]));
    let back = reg.rollback("m").expect("rollback");
    assert_eq!(back.version, v1.id);
    assert!(matches!(
        reg.rollback("m"),
        Err(RegistryError::NoPrevious { .. })
    ));

    // A damaged file is refused at promotion; the live pointer stays.
    std::fs::write(v2.dir.join("a.bin"), "tampered").expect("write");
    let e = reg.promote("m", v2.id).expect_err("corrupt");
    assert!(matches!(e, RegistryError::Corrupt { .. }), "{e}");
    assert_eq!(reg.live_version("m").expect("live"), Some(v1.id));

    // Leftovers of a killed run are cleaned up, complete versions stay.
    let leftover = reg.model_dir("m").join(".staging-999-0");
    std::fs::create_dir_all(&leftover).expect("mkdir");
    let half = reg.model_dir("m").join("v0009");
    std::fs::create_dir_all(&half).expect("mkdir");
    std::fs::write(half.join("a.bin"), "x").expect("write");
    let removed = reg.recover().expect("recover");
    assert_eq!(removed.len(), 2, "{removed:?}");
    assert_eq!(reg.versions("m").expect("versions").len(), 2);

    // The next version number follows the highest folder ever used.
    let v3 = stage_with(&reg, "m", "three");
    let v4 = stage_with(&reg, "m", "four");
    assert_eq!(v3.id, VersionId(3));
    reg.promote("m", v4.id).expect("promote 4");
    let removed = reg.prune("m", 1).expect("prune");
    // v1 is in the history, v4 is live: v2 and v3 go.
    assert_eq!(removed, vec![VersionId(2), VersionId(3)]);
    assert_eq!(
        reg.versions("m")
            .expect("versions")
            .iter()
            .map(|v| v.id)
            .collect::<Vec<_>>(),
        vec![VersionId(1), VersionId(4)]
    );
}

#[test]
fn unknown_version_lists_what_exists() {
    let tmp = tempfile::tempdir().expect("tmp");
    let reg = Registry::open(tmp.path()).expect("open");
    stage_with(&reg, "m", "one");
    let e = reg.promote("m", VersionId(5)).expect_err("missing");
    assert_eq!(
        e.to_string(),
        "m has no version v0005; complete versions: v0001"
    );
}

#[test]
fn dropped_staging_leaves_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let reg = Registry::open(tmp.path()).expect("open");
    {
        let s = reg.stage("m").expect("stage");
        std::fs::write(s.dir().join("a.bin"), "x").expect("write");
    }
    let left: Vec<_> = std::fs::read_dir(reg.model_dir("m"))
        .expect("read")
        .collect();
    assert!(left.is_empty());
}

/// Replace the manifest's file list of `v` (as a hand-edited or hostile
/// registry would).
fn set_manifest_files(v: &VersionInfo, files: &[(&str, String)]) {
    let mut m = Registry::read_manifest(&v.dir).expect("manifest");
    m.files = files
        .iter()
        .map(|(n, c)| (n.to_string(), c.clone()))
        .collect();
    std::fs::write(
        v.dir.join(MANIFEST),
        serde_json::to_vec(&m).expect("encode"),
    )
    .expect("write manifest");
}

/// `f` on another thread, failing the test if it blocks for 20 s (a
/// FIFO opened for reading blocks until a writer comes).
fn within_20s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(20))
        .expect("the registry blocked on a file")
}

#[test]
fn a_malicious_manifest_is_refused_before_reading_elsewhere() {
    let tmp = tempfile::tempdir().expect("tmp");
    let reg = Registry::open(tmp.path()).expect("open");
    let v = stage_with(&reg, "m", "model");
    let secret = tmp.path().join("m").join("secret");
    std::fs::write(&secret, "secret").expect("write");
    let sum = checksum(b"secret");
    for (name, why) in [
        ("../secret", "a path with a folder separator"),
        ("/etc/passwd", "an absolute path"),
        ("..", "`..`"),
        ("", "an empty name"),
        ("sub/a.bin", "a path with a folder separator"),
        (MANIFEST, "the manifest itself"),
    ] {
        set_manifest_files(&v, &[("a.bin", checksum(b"model")), (name, sum.clone())]);
        let e = reg.verify("m", v.id).expect_err(name);
        assert!(
            matches!(&e, RegistryError::BadEntry { name: n, reason, .. } if n == name && reason == why),
            "{name}: {e}"
        );
        assert!(e.to_string().contains("expected a plain file name"), "{e}");
        assert!(reg.promote("m", v.id).is_err(), "{name}: promoted");
        assert!(reg.read_verified("m", v.id).is_err(), "{name}: read");
    }
    assert_eq!(reg.live_version("m").expect("live"), None);
}

#[cfg(unix)]
#[test]
fn links_fifos_and_oversized_files_are_refused_without_blocking() {
    let tmp = tempfile::tempdir().expect("tmp");
    let reg = Registry::open(tmp.path()).expect("open");
    let v = stage_with(&reg, "m", "model");
    let outside = tmp.path().join("outside");
    std::fs::write(&outside, "secret").expect("write");

    // A symbolic link to a file elsewhere, with that file's checksum.
    std::os::unix::fs::symlink(&outside, v.dir.join("link")).expect("symlink");
    set_manifest_files(&v, &[("link", checksum(b"secret"))]);
    let e = reg.verify("m", v.id).expect_err("link");
    assert!(e.to_string().contains("found a symbolic link"), "{e}");

    // A FIFO: refused at once, never opened for a blocking read.
    let status = std::process::Command::new("mkfifo")
        .arg(v.dir.join("pipe"))
        .status()
        .expect("mkfifo");
    assert!(status.success());
    set_manifest_files(&v, &[("pipe", checksum(b""))]);
    let (reg2, id) = (reg.clone(), v.id);
    let e = within_20s(move || reg2.verify("m", id)).expect_err("fifo");
    assert!(e.to_string().contains("named pipe (FIFO)"), "{e}");

    // A file over the size bound (sparse: nothing is written), refused
    // before it is read.
    let huge = std::fs::File::create(v.dir.join("huge")).expect("create");
    huge.set_len(MAX_FILE_BYTES + 1).expect("set_len");
    set_manifest_files(&v, &[("huge", checksum(b""))]);
    let e = reg.verify("m", v.id).expect_err("huge");
    assert!(
        e.to_string()
            .contains(&format!("found {} bytes", MAX_FILE_BYTES + 1)),
        "{e}"
    );

    // A FIFO as the live pointer or the manifest does not hang readers either.
    std::process::Command::new("mkfifo")
        .arg(reg.live_pointer_path("m"))
        .status()
        .expect("mkfifo");
    let reg2 = reg.clone();
    let e = within_20s(move || reg2.live("m")).expect_err("fifo pointer");
    assert!(e.to_string().contains("named pipe"), "{e}");
    std::fs::remove_file(v.dir.join(MANIFEST)).expect("rm");
    std::process::Command::new("mkfifo")
        .arg(v.dir.join(MANIFEST))
        .status()
        .expect("mkfifo");
    let reg2 = reg.clone();
    let versions = within_20s(move || reg2.versions("m")).expect("versions");
    assert!(versions.is_empty(), "a FIFO manifest is no version");
}

#[test]
fn read_verified_hands_out_the_bytes_it_hashed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let reg = Registry::open(tmp.path()).expect("open");
    let v = stage_with(&reg, "m", "model bytes");
    let read = reg.read_verified("m", v.id).expect("verified");
    assert_eq!(read.bytes("a.bin").expect("a.bin"), b"model bytes");
    // Changing the file afterwards changes nothing that was read; the
    // next read refuses it.
    std::fs::write(v.dir.join("a.bin"), "other bytes").expect("write");
    assert_eq!(read.bytes("a.bin").expect("a.bin"), b"model bytes");
    assert!(matches!(
        reg.read_verified("m", v.id),
        Err(RegistryError::Corrupt { .. })
    ));
    let e = read.bytes("b.bin").expect_err("not listed").to_string();
    assert!(
        e.contains("b.bin is not listed") && e.contains("a.bin"),
        "{e}"
    );
}
