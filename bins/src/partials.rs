//! `serve`'s partials flags: `--partials-max-age DURATION`, `--partials-max-bytes SIZE` and
//! `--list-partials`.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use ferry_disk::{FsStore, PartialInfo, PartialsPolicy};
use serde::Serialize;

use crate::output::{Output, escape_line};

/// Default of `--partials-max-age`: a week.
pub const DEFAULT_MAX_AGE: &str = "7d";

/// A duration: a whole number with a unit `s`, `m`, `h` or `d` (a bare number is seconds);
/// zero means never (see [`policy`]).
///
/// # Errors
/// A message for clap when `s` is not such a duration.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (digits, unit) = split_unit(s);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 7d, 12h, 30m or 0"))?;
    let secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit {unit:?} in {s:?} (use s, m, h or d)")),
    };
    let total = n.checked_mul(secs).ok_or("duration too long")?;
    Ok(Duration::from_secs(total))
}

/// A size in bytes: a whole number with an optional binary unit `K`, `M`, `G` or `T` (also
/// `KiB`, `MB`...; all powers of 1024); zero means no limit (see [`policy`]).
///
/// # Errors
/// A message for clap when `s` is not such a size.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let (digits, unit) = split_unit(s);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 10G, 500M or 0"))?;
    let unit = unit.trim_end_matches(['B', 'b']).trim_end_matches('i');
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("unknown unit in {s:?} (use K, M, G or T)")),
    };
    let total = n.checked_mul(1 << shift).ok_or("size too large")?;
    Ok(total)
}

fn split_unit(s: &str) -> (&str, &str) {
    let s = s.trim();
    let at = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s.split_at(at)
}

/// The policy the flags ask for (zero: no bound).
pub fn policy(max_age: Duration, max_bytes: u64) -> PartialsPolicy {
    PartialsPolicy {
        max_age: (!max_age.is_zero()).then_some(max_age),
        max_bytes: (max_bytes > 0).then_some(max_bytes),
    }
}

/// `serve --list-partials`: one line per partial under `root`, oldest first:
/// `BYTES  AGE  NAME`, `(receiving)` after one being received now. With `--json`, objects
/// `{"event":"partial","name":..,"bytes":..,"age_seconds":..,"receiving":..}`.
///
/// # Errors
/// The root cannot be opened or read.
pub fn list(root: &Path, out: &Output) -> anyhow::Result<()> {
    // Only look: never create the root here.
    anyhow::ensure!(root.is_dir(), "{} is not a directory", root.display());
    let store =
        FsStore::new(root).with_context(|| format!("cannot use {} as the root", root.display()))?;
    let partials = store
        .partials()
        .with_context(|| format!("cannot read {}", root.display()))?;
    let mut stdout = std::io::stdout().lock();
    for p in &partials {
        let _ = if out.is_json() {
            write_json(&mut stdout, p)
        } else {
            writeln!(stdout, "{}", human(p))
        };
    }
    let _ = stdout.flush();
    Ok(())
}

fn write_json(out: &mut dyn Write, p: &PartialInfo) -> std::io::Result<()> {
    #[derive(Serialize)]
    struct Event<'a> {
        event: &'static str,
        name: &'a str,
        bytes: u64,
        age_seconds: u64,
        receiving: bool,
    }
    let event = Event {
        event: "partial",
        name: &p.name,
        bytes: p.bytes,
        age_seconds: p.age.as_secs(),
        receiving: p.claimed,
    };
    crate::json_safe::to_writer(&mut *out, &event)?;
    out.write_all(b"\n")
}

fn human(p: &PartialInfo) -> String {
    let mut line = format!(
        "{:>12}  {:>9}  {}",
        p.bytes,
        format_age(p.age),
        escape_line(&p.name)
    );
    if p.claimed {
        line.push_str("  (receiving)");
    }
    line
}

/// `42s`, `5m07s`, `3h05m`, `2d04h`.
fn format_age(age: Duration) -> String {
    let s = age.as_secs();
    let (d, h, m) = (s / 86_400, s / 3600 % 24, s / 60 % 60);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{m}m{:02}s", s % 60),
        3600..86_400 => format!("{h}h{m:02}m"),
        _ => format!("{d}d{h:02}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let d = |s| {
            policy(parse_duration(s).unwrap(), 0)
                .max_age
                .map(|d| d.as_secs())
        };
        assert_eq!(d("7d"), Some(7 * 86_400));
        assert_eq!(d("12h"), Some(12 * 3600));
        assert_eq!(d("30m"), Some(1800));
        assert_eq!(d("45s"), Some(45));
        assert_eq!(d("90"), Some(90));
        assert_eq!(d("0"), None);
        assert_eq!(d("0d"), None);
        for bad in [
            "",
            "d",
            "7w",
            "-1d",
            "1.5h",
            "7 d x",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sizes() {
        let s = |s| policy(Duration::ZERO, parse_size(s).unwrap()).max_bytes;
        assert_eq!(s("10G"), Some(10 << 30));
        assert_eq!(s("10GiB"), Some(10 << 30));
        assert_eq!(s("500M"), Some(500 << 20));
        assert_eq!(s("500mb"), Some(500 << 20));
        assert_eq!(s("4k"), Some(4096));
        assert_eq!(s("1T"), Some(1 << 40));
        assert_eq!(s("123"), Some(123));
        assert_eq!(s("123B"), Some(123));
        assert_eq!(s("0"), None);
        for bad in ["", "G", "10X", "-1", "1.5G", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lines() {
        let p = PartialInfo {
            name: "dir/a\u{202e}b".into(),
            bytes: 1234,
            age: Duration::from_secs(2 * 86_400 + 4 * 3600 + 5),
            claimed: false,
        };
        assert_eq!(human(&p), "        1234      2d04h  dir/a\\u{202e}b");
        let p = PartialInfo {
            age: Duration::from_secs(307),
            claimed: true,
            ..p
        };
        assert!(human(&p).ends_with("5m07s  dir/a\\u{202e}b  (receiving)"));
        assert_eq!(format_age(Duration::from_secs(42)), "42s");
        assert_eq!(format_age(Duration::from_secs(3 * 3600 + 300)), "3h05m");
        let mut buf = Vec::new();
        write_json(&mut buf, &p).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "{\"event\":\"partial\",\"name\":\"dir/a\\u202eb\",\"bytes\":1234,\"age_seconds\":307,\"receiving\":true}\n"
        );
    }
}
