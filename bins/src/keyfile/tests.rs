use super::*;
use std::os::unix::fs::PermissionsExt as _;

fn key(seed: u8) -> [u8; KEY_LEN] {
    core::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
}

fn kind(e: &anyhow::Error) -> &KeyFileError {
    e.downcast_ref::<KeyFileError>()
        .unwrap_or_else(|| panic!("not a KeyFileError: {e:#}"))
}

fn mode_of(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn round_trip() {
    for seed in 0..=255u8 {
        let k = key(seed);
        let text = encode(&k);
        assert!(text.starts_with(PREFIX));
        assert!(text.ends_with('\n'));
        assert_eq!(text.trim_end().len(), PREFIX.len() + 48);
        assert_eq!(text.lines().count(), 1);
        assert_eq!(decode(&text), Ok(k));
    }
    let k = generate().unwrap();
    assert_eq!(decode(&encode(&k)), Ok(k));
    assert_ne!(generate().unwrap(), k);
}

#[test]
fn tolerates_surrounding_whitespace() {
    let k = key(7);
    let line = encode(&k);
    let line = line.trim_end();
    for text in [
        line.to_owned(),
        format!("  {line}  "),
        format!("\n\t{line}\r\n\n"),
    ] {
        assert_eq!(decode(&text), Ok(k), "{text:?}");
    }
}

#[test]
fn typed_errors() {
    let line = encode(&key(1));
    let body = line.trim_end().strip_prefix(PREFIX).unwrap();
    assert_eq!(decode(""), Err(DecodeError::WrongPrefix));
    assert_eq!(decode(body), Err(DecodeError::WrongPrefix));
    assert_eq!(
        decode(&format!("ferry-psk-v2:{body}")),
        Err(DecodeError::WrongPrefix)
    );
    assert_eq!(
        decode(&format!("{PREFIX}{body}=")),
        Err(DecodeError::BadBase64)
    );
    assert_eq!(
        decode(&format!("{PREFIX}{}", body.replace(|_| true, "+"))),
        Err(DecodeError::BadBase64)
    );
    let mid = body.len() / 2;
    assert_eq!(
        decode(&format!("{PREFIX}{} {}", &body[..mid], &body[mid..])),
        Err(DecodeError::BadBase64)
    );
    assert_eq!(
        decode(&format!("{PREFIX}{}", &body[..44])),
        Err(DecodeError::WrongLength(33))
    );
    assert_eq!(
        decode(&format!("{PREFIX}{body}AAAA")),
        Err(DecodeError::WrongLength(39))
    );
    assert_eq!(
        decode(&format!("{line}{line}")),
        Err(DecodeError::BadBase64)
    );
    assert_eq!(
        DecodeError::ChecksumMismatch.to_string(),
        "key file is corrupt (checksum mismatch)"
    );
}

#[test]
fn checksum_catches_any_single_character_change() {
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for seed in [0u8, 1, 200] {
        let line = encode(&key(seed));
        let line = line.trim_end();
        for pos in PREFIX.len()..line.len() {
            for c in ALPHABET.chars() {
                if line.as_bytes()[pos] == c as u8 {
                    continue;
                }
                let mut changed = line.to_owned();
                changed.replace_range(pos..=pos, c.encode_utf8(&mut [0; 4]));
                assert_eq!(
                    decode(&changed),
                    Err(DecodeError::ChecksumMismatch),
                    "position {pos} -> {c}"
                );
            }
        }
    }
}

#[test]
fn insecure_permissions_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key");
    write_new(&path, &key(3), false).unwrap();
    for mode in [0o644, 0o640, 0o604, 0o660, 0o606, 0o700 | 0o020] {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        let e = load(&path).unwrap_err();
        assert!(
            matches!(kind(&e), KeyFileError::Insecure(p, m) if p == &path && *m == mode),
            "{mode:o}: {e:#}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("chmod 600 {}", path.display())),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("key file {}", path.display())),
            "{msg}"
        );
    }
    for mode in [0o600, 0o400] {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        assert_eq!(load(&path).unwrap(), key(3), "{mode:o}");
    }
}

#[test]
fn load_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let e = load(&missing).unwrap_err();
    assert!(matches!(kind(&e), KeyFileError::NotFound(p) if p == &missing));
    assert!(
        e.to_string()
            .starts_with(&format!("key file not found: {}", missing.display()))
    );

    let corrupt = dir.path().join("corrupt");
    let mut text = encode(&key(9));
    text.replace_range(PREFIX.len()..PREFIX.len() + 1, "Z");
    if text == encode(&key(9)) {
        text.replace_range(PREFIX.len()..PREFIX.len() + 1, "Y");
    }
    fs::write(&corrupt, text).unwrap();
    fs::set_permissions(&corrupt, fs::Permissions::from_mode(0o600)).unwrap();
    let e = load(&corrupt).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}: key file is corrupt (checksum mismatch)",
            corrupt.display()
        )
    );

    let binary = dir.path().join("binary");
    fs::write(&binary, [0xff, 0xfe, 0]).unwrap();
    fs::set_permissions(&binary, fs::Permissions::from_mode(0o600)).unwrap();
    let e = load(&binary).unwrap_err();
    assert!(matches!(
        kind(&e),
        KeyFileError::Invalid(_, DecodeError::WrongPrefix)
    ));

    let big = dir.path().join("big");
    fs::write(&big, vec![b' '; 10_000]).unwrap();
    fs::set_permissions(&big, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(
        kind(&load(&big).unwrap_err()),
        KeyFileError::TooLarge(_)
    ));

    let sub = dir.path().join("sub");
    fs::create_dir(&sub).unwrap();
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o700)).unwrap();
    let e = load(&sub).unwrap_err();
    assert!(e.to_string().contains("is a directory"), "{e}");
}

#[test]
fn write_new_refuses_existing_without_force_and_replaces_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key");
    write_new(&path, &key(1), false).unwrap();
    let e = write_new(&path, &key(2), false).unwrap_err();
    assert!(matches!(kind(&e), KeyFileError::Exists(_)));
    assert_eq!(
        e.to_string(),
        format!(
            "key file exists: {} (use --force to replace it)",
            path.display()
        )
    );
    assert_eq!(load(&path).unwrap(), key(1));
    write_new(&path, &key(2), true).unwrap();
    assert_eq!(load(&path).unwrap(), key(2));
    assert_eq!(mode_of(&path), 0o600);
    // No temporary files left behind.
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["key"]);
}

#[test]
fn created_file_is_0600_and_parent_dirs_0700() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config").join("ferry").join("key");
    write_new(&path, &key(4), false).unwrap();
    assert_eq!(mode_of(&path), 0o600);
    assert_eq!(mode_of(path.parent().unwrap()), 0o700);
    assert_eq!(mode_of(&dir.path().join("config")), 0o700);
    assert_eq!(fs::read_to_string(&path).unwrap(), encode(&key(4)));
}

#[test]
fn write_new_keeps_existing_parent_mode() {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("key");
    write_new(&path, &key(5), false).unwrap();
    assert_eq!(mode_of(dir.path()), 0o755);
    assert_eq!(mode_of(&path), 0o600);
}

#[test]
fn load_or_create_creates_once_then_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferry").join("key");
    let mut noticed = Vec::new();
    let first = load_or_create(&path, |p| noticed.push(p.to_owned())).unwrap();
    assert_eq!(noticed, std::slice::from_ref(&path));
    assert_eq!(mode_of(&path), 0o600);
    let second = load_or_create(&path, |_| panic!("must not create twice")).unwrap();
    assert_eq!(first, second);
    assert_eq!(load(&path).unwrap(), first);
}

#[test]
fn load_or_create_never_replaces_a_bad_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key");
    write_new(&path, &key(6), false).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let e = load_or_create(&path, |_| panic!("must not create")).unwrap_err();
    assert!(matches!(kind(&e), KeyFileError::Insecure(..)));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(load(&path).unwrap(), key(6));
}

#[test]
fn default_path_rules() {
    let home = || Some(PathBuf::from("/home/u"));
    assert_eq!(
        default_path_from(None, home).unwrap(),
        Path::new("/home/u/.config/ferry/key")
    );
    assert_eq!(
        default_path_from(Some("/xdg".into()), home).unwrap(),
        Path::new("/xdg/ferry/key")
    );
    // Empty or relative XDG_CONFIG_HOME is ignored, as the XDG spec says.
    for bad in ["", "rel/dir"] {
        assert_eq!(
            default_path_from(Some(bad.into()), home).unwrap(),
            Path::new("/home/u/.config/ferry/key")
        );
    }
    let e = default_path_from(None, || None).unwrap_err();
    assert!(matches!(kind(&e), KeyFileError::NoDefaultPath));
    assert!(default_path().is_ok() || dirs::home_dir().is_none());
}

#[test]
fn resolve_path_order() {
    let default = || Ok(PathBuf::from("/default"));
    assert_eq!(
        resolve_path_from(Some("/flag".into()), Some("/env".into()), default).unwrap(),
        Path::new("/flag")
    );
    assert_eq!(
        resolve_path_from(None, Some("/env".into()), default).unwrap(),
        Path::new("/env")
    );
    assert_eq!(
        resolve_path_from(Some("".into()), Some("".into()), default).unwrap(),
        Path::new("/default")
    );
    assert_eq!(
        resolve_path_from(None, None, default).unwrap(),
        Path::new("/default")
    );
}
