//! Running the real binaries on 127.0.0.1 with temporary roots and keys.
//!
//! Every test names the binary it runs, so the same cases run against each adapter's binary
//! (`ferry-std`, `ferry-mio`, `ferry-smol`), and any client against any server.

#![allow(dead_code, unreachable_pub)]

pub mod cases;
pub mod code;
pub mod code_udp;
pub mod conventions;
pub mod exhaust;
pub mod hostile;
pub mod ident;
pub mod idle;
pub mod proxy;
pub mod relay;
pub mod roles;
pub mod small;
pub mod udp;
pub mod ux;

/// One `#[test]` per end-to-end case, with client and server both the binary `$bin`.
#[macro_export]
macro_rules! e2e_suite {
    ($bin:expr) => {
        $crate::e2e_suite!(@cases $bin; cases;
            round_trip, directory_tree, standard_input, interrupted_send_resumes, wrong_key,
            bad_names, exists_rules, garbage_client, idle_connection_closed, ipv6,
            connection_limit, disk_full, silent_crowd, records, daytime,
            resume_right_after_kill, resume_after_the_sender_vanished, planted_files,
            modes_are_masked);
        $crate::e2e_suite!(@cases $bin; roles;
            hostile_server_get, hostile_server_send_and_ls, get_overwrite,
            hash_checks_do_not_stall_others);
        $crate::e2e_suite!(@cases $bin; exhaust; offer_flood_leaves_room);
        $crate::e2e_suite!(@cases $bin; small;
            many_small_files, kill_mid_batch_loses_nothing_reported);
        $crate::e2e_suite!(@cases $bin; code;
            code_round_trip, code_standard_input, code_wrong_code_burns, code_on_argv_warns,
            code_huge_file_prints_at_once, relay_round_trip_sees_no_plaintext,
            relay_tampering_is_rejected, relay_two_pairs_at_once, relay_bounds,
            relay_pairs_under_idle_load, code_declined_writes_nothing);
        $crate::e2e_suite!(@cases $bin; code_udp;
            code_udp_round_trip, code_udp_env_and_stdin, code_udp_wrong_code_burns,
            code_udp_relay_round_trip, code_udp_relay_wrong_code_burns, code_udp_relay_tampering,
            relay_udp_bounds);
        $crate::e2e_suite!(@cases $bin; conventions;
            json_contract, conventions, keys, config_file, transfer_options, bwlimit);
        $crate::e2e_suite!(@cases $bin; ux;
            errors_name_side_cause_fix, interrupt_hints_and_resumes,
            retries_reconnect_a_dropped_session, progress_under_a_terminal,
            directory_sends_report);
        $crate::e2e_suite!(@cases $bin; ident;
            pin_on_first_use, udp_pin_on_first_use, rights_and_confinement,
            revocation_mid_transfer, mode_refusal, clients_behind_serve_json);
        $crate::e2e_suite!(@cases $bin; udp;
            udp_round_trip, udp_directory_tree, udp_standard_input, udp_interrupted_send_resumes,
            udp_wrong_key, udp_bad_names, udp_exists_rules, udp_records, udp_json_and_env,
            udp_no_udp_server, udp_garbage_datagrams, udp_lossy_link,
            udp_retries_until_the_server_is_up, udp_busy);
    };
    (@cases $bin:expr; $module:ident; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                common::$module::$case($bin, $bin);
            }
        )*
    };
}

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The target is 2 s (measured here on an idle machine: see the README); the test
/// allows `SLOW` so that a loaded CI machine (the whole suite runs in parallel on two cores)
/// does not fail it, while a client shut out or stalled behind the attack still does.
pub const SLOW: Duration = Duration::from_secs(5);

/// Path of a binary of this package.
pub fn bin(name: &str) -> PathBuf {
    match name {
        "ferry-std" => PathBuf::from(env!("CARGO_BIN_EXE_ferry-std")),
        "ferry-mio" => PathBuf::from(env!("CARGO_BIN_EXE_ferry-mio")),
        "ferry-smol" => PathBuf::from(env!("CARGO_BIN_EXE_ferry-smol")),
        "ferry" => PathBuf::from(env!("CARGO_BIN_EXE_ferry")),
        other => panic!("unknown binary {other}"),
    }
}

/// A scratch area: a key, a server root, a client work dir.
pub struct Env {
    pub dir: TempDir,
    pub key: PathBuf,
}

impl Env {
    pub fn new(bin_name: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        let out = Command::new(bin(bin_name))
            .args(["keygen", "--out"])
            .arg(&key)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "keygen: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Env { dir, key }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Write a file (creating parents) and return its path.
    pub fn write(&self, rel: &str, data: &[u8]) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        p
    }
}

/// A running `serve`, killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub root: PathBuf,
    /// Lines the server printed on stdout after `listening on` (e.g. `--print` records).
    pub stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Server {
    pub fn start(bin_name: &str, env: &Env, root: &Path, extra: &[&str]) -> Server {
        Self::start_listen(bin_name, env, root, "127.0.0.1:0", extra)
    }

    pub fn start_listen(
        bin_name: &str,
        env: &Env,
        root: &Path,
        listen: &str,
        extra: &[&str],
    ) -> Server {
        let mut cmd = Command::new(bin(bin_name));
        cmd.args(["serve", "--listen", listen, "--root"])
            .arg(root)
            .arg("--key")
            .arg(&env.key)
            .args(extra);
        Self::spawn(cmd, root)
    }

    /// `daytime-serve --listen 127.0.0.1:0`.
    pub fn daytime(bin_name: &str) -> Server {
        let mut cmd = Command::new(bin(bin_name));
        cmd.args(["daytime-serve", "--listen", "127.0.0.1:0"]);
        Self::spawn(cmd, Path::new("."))
    }

    pub fn spawn(mut cmd: Command, root: &Path) -> Server {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("serve printed nothing").unwrap();
        // Exactly `listening on ADDR` in every mode, `--json` included (the scripts' contract).
        let addr = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .parse()
            .unwrap();
        // Keep draining stdout so the server never blocks on a full pipe.
        let printed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = printed.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Server {
            child,
            addr,
            root: root.to_path_buf(),
            stdout: printed,
            stderr: Some(stderr),
        }
    }

    pub fn to(&self) -> String {
        self.addr.to_string()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Stop the server and return what it logged.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr.take().unwrap().join().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run a client command with the env's key, returning its output.
pub fn client(bin_name: &str, env: &Env, args: &[&str]) -> Output {
    client_in(bin_name, env, env.dir.path(), args, None)
}

/// Run a client command in `cwd`, optionally feeding `stdin`.
pub fn client_in(
    bin_name: &str,
    env: &Env,
    cwd: &Path,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> Output {
    client_with(bin_name, env, cwd, args, stdin, &[])
}

thread_local! {
    /// Client commands run by this thread go over UDP ([`over_udp`]).
    static UDP: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `f` with every client command ([`client_with`] and the helpers over it) given `--udp`,
/// so a TCP case runs as is over UDP.
pub fn over_udp<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            UDP.with(|u| u.set(self.0));
        }
    }
    let _reset = Reset(UDP.with(|u| u.replace(true)));
    f()
}

/// Whether `args` are a client command (`send`, `get`, `ls`, `record`).
fn is_client_command(args: &[&str]) -> bool {
    args.iter()
        .find(|a| !a.starts_with('-'))
        .is_some_and(|c| matches!(*c, "send" | "get" | "ls" | "record"))
}

/// [`client_in`] with environment variables set (`Some`) or removed (`None`).
pub fn client_with(
    bin_name: &str,
    env: &Env,
    cwd: &Path,
    args: &[&str],
    stdin: Option<&[u8]>,
    vars: &[(&str, Option<&str>)],
) -> Output {
    let mut cmd = Command::new(bin(bin_name));
    // The transport is the test's choice, not the environment's.
    cmd.env_remove("FERRY_TRANSPORT");
    for (k, v) in vars {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.current_dir(cwd).args(args);
    if UDP.with(std::cell::Cell::get) && is_client_command(args) {
        cmd.arg("--udp");
    }
    cmd.arg("--key")
        .arg(&env.key)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(data) = stdin {
        let mut sink = child.stdin.take().unwrap();
        let data = data.to_vec();
        std::thread::spawn(move || {
            let _ = sink.write_all(&data);
        });
    }
    child.wait_with_output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Deterministic pseudo-random bytes.
pub fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Every regular file under `root`, relative, sorted (to check nothing else was written).
pub fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    walk(root, root, &mut out);
    out.sort();
    out
}

/// JSON objects printed by `--json`, one per line, without the final summary object.
pub fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    let mut all = json_all(o);
    if all.last().is_some_and(|v| v["event"] == "summary") {
        all.pop();
    }
    all
}

/// Every JSON object printed by `--json`, one per line (the summary last).
pub fn json_all(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

/// Wait until `f` holds, or panic after `secs`.
pub fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

/// A raw TCP connection to the server (for garbage and idle clients).
pub fn raw(server: &Server) -> TcpStream {
    TcpStream::connect(server.addr).unwrap()
}
