//! The identity side of the commands: the server's mode and allow list (with its reload on
//! SIGHUP or when the file changes), and the client's mode, identity and pinning.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use ferry_app::access::{AccessStore, AllowList, OpenStore};
use ferry_disk::Store;
use proto::{Config, Mode, Psk};

use crate::cli::{Cli, IdentityArgs, Remote, ServeArgs};
use crate::identity;
use crate::known_hosts::Pin;
use crate::output::Output;

/// How often the allow list's modification time is looked at.
const WATCH_EVERY: Duration = Duration::from_millis(500);

/// `serve --identity`: set the mode (PINNED, or PINNED+PSK with `--key`) and the identity in
/// `config`, and print the fingerprint clients pin.
///
/// # Errors
/// The identity file is unusable.
pub fn serve_identity(
    cli: &Cli,
    args: &ServeArgs,
    config: &mut Config,
    out: &Output,
) -> anyhow::Result<()> {
    let Some(path) = &args.identity else {
        return Ok(());
    };
    let id = identity::load_or_create(path, |p| {
        out.info(format!("created a new server identity in {}", p.display()))
    })?;
    config.mode = if cli.key.is_some() {
        Mode::PinnedPsk
    } else {
        Mode::Pinned
    };
    let fp = identity::fingerprint_of(&id.public_key());
    let public = identity::public_line(&id);
    out.json_event(&crate::json::KeyEvent {
        event: "key",
        path: Some(&path.to_string_lossy()),
        fingerprint: &fp,
        created: false,
        public_key: Some(&public),
    });
    out.human_line(format_args!("identity {fp} (mode {})", config.mode.name()));
    if config.mode == Mode::Pinned && args.clients.is_none() {
        out.info(
            "warning: mode PINNED without --clients serves anyone who can connect (clients \
             prove nothing); add --key (PINNED+PSK) or --clients FILE to choose who may",
        );
    }
    config.identity = Some(id);
    Ok(())
}

fn read_list(path: &Path) -> anyhow::Result<AllowList> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    AllowList::parse(&text).with_context(|| format!("{}", path.display()))
}

/// `serve --clients FILE`: the access store over `open`, reloaded on SIGHUP and when the
/// file changes (a reload that does not parse keeps the list in force, and says why).
///
/// # Errors
/// The list does not parse, or the signal handler cannot be installed.
pub fn serve_clients(path: &Path, open: OpenStore, out: &Output) -> anyhow::Result<Arc<dyn Store>> {
    let list = read_list(path)?;
    out.info(format!(
        "{} clients allowed ({})",
        list.len(),
        path.display()
    ));
    let store = Arc::new(AccessStore::new(list, open));
    let hup = Arc::new(std::sync::atomic::AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
        .context("cannot watch for SIGHUP")?;
    let (watched, path) = (store.clone(), path.to_path_buf());
    let out = out.clone();
    std::thread::Builder::new()
        .name("ferry-clients".into())
        .spawn(move || watch(&watched, &path, &hup, &out))
        .context("cannot start the allow-list watcher")?;
    Ok(store)
}

fn mtime(path: &Path) -> Option<(SystemTime, u64)> {
    let md = std::fs::metadata(path).ok()?;
    Some((md.modified().ok()?, md.len()))
}

fn watch(store: &AccessStore, path: &Path, hup: &std::sync::atomic::AtomicBool, out: &Output) {
    let mut seen = mtime(path);
    loop {
        std::thread::sleep(WATCH_EVERY);
        let now = mtime(path);
        let signalled = hup.swap(false, std::sync::atomic::Ordering::SeqCst);
        if !signalled && now == seen {
            continue;
        }
        seen = now;
        match read_list(path) {
            Ok(list) => {
                let n = list.len();
                let revoked = store.reload(list);
                out.info(format!(
                    "reloaded {}: {n} clients allowed{}",
                    path.display(),
                    if revoked.is_empty() {
                        String::new()
                    } else {
                        format!(", revoked: {}", revoked.join(", "))
                    }
                ));
            }
            Err(e) => out.error(format!("{e:#}; keeping the previous allow list")),
        }
    }
}

/// How a client authenticates: its config's mode and identity, the key, the pin.
pub struct ClientAuth {
    /// The mode to ask for first.
    pub mode: Mode,
    /// The PSK (a placeholder when the key file is missing and no PSK mode is asked for).
    pub psk: Psk,
    /// Whether a key file was loaded.
    pub have_key: bool,
    /// This client's identity.
    pub identity: Option<proto::Identity>,
    /// What the server's key is checked against.
    pub pin: Pin,
}

impl ClientAuth {
    /// From the flags: a pinned mode when the client has an identity, a fingerprint or a
    /// pinned entry for the server; PINNED+PSK in those modes when a key file is available.
    ///
    /// # Errors
    /// A bad fingerprint or identity file; a missing key in the PSK mode.
    pub fn new(cli: &Cli, ident: &IdentityArgs, remote: &Remote) -> anyhow::Result<Self> {
        let explicit = match &ident.fingerprint {
            Some(fp) => Some(crate::fingerprint::parse(fp).map_err(anyhow::Error::msg)?),
            None => None,
        };
        let pin = Pin {
            host: remote.to_string(),
            explicit,
        };
        let identity = match &ident.identity {
            Some(p) => Some(identity::load(p)?),
            None => None,
        };
        let pinned = identity.is_some() || pin.known();
        let key = crate::keysource::load(cli.key.clone()).map(|(k, _)| k);
        let (psk, have_key) = match key {
            Ok(k) => (Psk::from_key_bytes(&k), true),
            Err(_) if pinned => (Psk::from_key_bytes(&[0; 32]), false),
            Err(e) => return Err(e),
        };
        let mode = match (pinned, have_key) {
            (false, _) => Mode::Psk,
            (true, true) => Mode::PinnedPsk,
            (true, false) => Mode::Pinned,
        };
        Ok(ClientAuth {
            mode,
            psk,
            have_key,
            identity,
            pin,
        })
    }

    /// Apply to a session config.
    pub fn configure(&self, config: &mut Config) {
        config.mode = self.mode;
        config.identity.clone_from(&self.identity);
    }

    /// Why the client does not run mode `m` the server requires (see [`Self::switch_to`]).
    pub fn no_switch(&self, m: u8) -> String {
        match Mode::from_byte(m) {
            Some(Mode::Psk) => format!(
                "{} answered without an identity, and this client pins one (known_hosts, \
                 --fingerprint or --identity): it never falls back to the PSK mode; if the \
                 server dropped its identity, delete its line in {}",
                self.pin.host,
                crate::known_hosts::path()
                    .map_or_else(|_| "known_hosts".into(), |p| p.display().to_string())
            ),
            Some(Mode::PinnedPsk) => {
                "the server needs the key file as well: pass --key (or FERRY_KEY)".into()
            }
            _ => "this client cannot run the mode the server requires".into(),
        }
    }

    /// The server answered that it requires mode byte `m`: switch to it if this client can
    /// run it (a pinned mode; PINNED+PSK only with the key). Returns whether it switched.
    pub fn switch_to(&mut self, m: u8) -> bool {
        match Mode::from_byte(m) {
            Some(Mode::Pinned) if self.mode == Mode::Psk => self.mode = Mode::Pinned,
            Some(Mode::PinnedPsk) if self.mode != Mode::PinnedPsk && self.have_key => {
                self.mode = Mode::PinnedPsk;
            }
            _ => return false,
        }
        tracing::info!(
            mode = self.mode.name(),
            "the server requires another mode; reconnecting"
        );
        true
    }
}
