//! The commands and outputs beyond the transfers: parsing with the config file and JSON
//! usage errors, `keygen`, `key fingerprint`, `completions`, `man`, the seal and daytime
//! results, `serve --json` events, and the dry-run plans and glob expansion of `send`/`get`.

use std::ffi::OsString;
use std::path::Path;
use std::sync::Arc;

use ferry_disk::{Outgoing, Store};
use proto::ListEntry;

use crate::cli::{Cli, GetArgs, KeyArgs, KeyCommand, KeygenArgs, Remote, SendOptions};
use crate::fingerprint::{Kind, fingerprint};
use crate::json::{DaytimeEvent, KeyEvent, PlanEvent, SealEvent};
use crate::output::{Output, escape_line, format_bytes};
use crate::run::Runtime;
use crate::{EXIT_USAGE, keyfile, keysource};

/// Parse `args` for the binary of `runtime` with the config file's defaults. `Err` is the exit
/// status after help, version or a usage error was printed (as JSON too with `--json`).
pub(super) fn parse(runtime: &str, args: &[OsString]) -> Result<Cli, i32> {
    let json = crate::json::json_requested(args);
    let cmd = crate::cli::command_for(runtime, args.first().map(OsString::as_os_str));
    let usage = |msg: &str, command: &str, stderr_too: bool| {
        let out = Output::new(json, false);
        if stderr_too {
            out.error_with("usage", msg);
        } else {
            out.json_error("usage", msg);
        }
        out.json_summary(command, EXIT_USAGE);
        EXIT_USAGE
    };
    let config = match crate::config::load() {
        Ok(c) => c,
        Err(e) => return Err(usage(&format!("{e:#}"), "", true)),
    };
    let cmd = crate::config::apply(cmd, &config);
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    Cli::try_parse_with(cmd, args.iter().cloned()).map_err(|e| {
        use clap::error::ErrorKind as K;
        if !json || matches!(e.kind(), K::DisplayHelp | K::DisplayVersion) {
            e.exit();
        }
        // The message is clap's text up to the usage line, on one line.
        let text = e.render().to_string();
        let msg = text
            .lines()
            .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let msg = msg.strip_prefix("error: ").unwrap_or(&msg);
        let command = args
            .iter()
            .skip(1)
            .filter_map(|a| a.to_str())
            .find(|a| names.iter().any(|n| n == a))
            .unwrap_or_default();
        // The JSON error on stdout; clap's own text (with the usage line) on stderr.
        let code = usage(msg, command, false);
        let _ = e.print();
        code
    })
}

/// `completions SHELL` and `man`: their output is not JSON, so `--json` is a usage error.
pub(super) fn generated(runtime: &str, program: Option<&OsString>, cli: &Cli, out: &Output) -> i32 {
    let name = crate::json::command_name(&cli.command);
    if cli.json {
        out.error_with("usage", format!("{name} writes no JSON: drop --json"));
        out.json_summary(name, EXIT_USAGE);
        return EXIT_USAGE;
    }
    let cmd = crate::cli::command_for(runtime, program.map(OsString::as_os_str));
    let mut stdout = std::io::stdout().lock();
    match &cli.command {
        crate::Command::Completions(a) => {
            crate::completions::completions(a.shell, cmd, &mut stdout)
        }
        _ => {
            if let Err(e) = crate::completions::man(cmd, &mut stdout)
                && e.kind() != std::io::ErrorKind::BrokenPipe
            {
                out.error_with("io", format!("cannot write the manual page: {e}"));
                return crate::EXIT_FAILURE;
            }
        }
    }
    0
}

/// `keygen`: write the key, then its path and fingerprint on stdout.
pub(super) fn keygen(cli: &Cli, args: &KeygenArgs, out: &Output) -> anyhow::Result<()> {
    let path = match &args.out {
        Some(p) => p.clone(),
        None => keyfile::resolve_path(cli.key.clone())?,
    };
    let key = keyfile::generate()?;
    keyfile::write_new(&path, &key, args.force)?;
    let fp = fingerprint(Kind::KeyFile, &key);
    let shown = path.to_string_lossy();
    out.json_event(&KeyEvent {
        event: "key",
        path: Some(&shown),
        fingerprint: &fp,
        created: true,
    });
    out.human_line(format_args!("wrote a new key to {shown}"));
    out.human_line(format_args!("fingerprint {fp}"));
    Ok(())
}

/// `key fingerprint`: the fingerprint alone on a line (the same on both ends).
pub(super) fn key(cli: &Cli, args: &KeyArgs, out: &Output) -> anyhow::Result<()> {
    match args.command {
        KeyCommand::Fingerprint => {
            let (key, origin) = keysource::load(cli.key.clone())?;
            let fp = fingerprint(Kind::KeyFile, &key);
            let path = origin.path().map(|p| p.to_string_lossy().into_owned());
            out.json_event(&KeyEvent {
                event: "key",
                path: path.as_deref(),
                fingerprint: &fp,
                created: false,
            });
            out.human_line(&fp);
        }
    }
    Ok(())
}

/// `seal`/`open` succeeded: a JSON object (human mode prints nothing, as before).
pub(super) fn sealed(event: &'static str, input: &Path, output: &Path, out: &Output) {
    out.json_event(&SealEvent {
        event,
        input: &input.to_string_lossy(),
        output: &output.to_string_lossy(),
    });
}

/// `daytime`: the server's line.
pub(super) fn daytime(server: &Remote, line: &str, out: &Output) {
    out.json_event(&DaytimeEvent {
        event: "daytime",
        server: &server.to_string(),
        time: line,
    });
    out.human_line(escape_line(line));
}

/// `serve`'s store: with `--json`, reporting every received file (and with `--print` every
/// record, as `{"event":"record","stored":true,"record":{...}}`).
pub(super) fn serve_store(store: Arc<dyn Store>, out: &Output, print: bool) -> Arc<dyn Store> {
    if out.is_json() {
        Arc::new(crate::serve_events::Reporting::new(store, out.clone()).print_records(print))
    } else {
        store
    }
}

/// The exclusion rules of `send`.
pub(super) fn filter(o: &SendOptions) -> crate::exclude::Filter {
    crate::exclude::Filter {
        patterns: o.exclude.clone(),
        gitignore: !o.no_gitignore,
    }
}

fn plan(action: &'static str, name: &str, bytes: Option<u64>, out: &Output) {
    out.count_entry();
    out.json_event(&PlanEvent {
        event: "plan",
        action,
        name,
        bytes,
    });
    let size = bytes.map_or_else(|| "?".to_owned(), format_bytes);
    out.human_line(format_args!("would {action} {name}  {size}"));
}

/// `send --dry-run`: one plan line per file; nothing sent. Returns the failures (none).
pub(super) fn plan_send(files: &[Outgoing], out: &Output) -> usize {
    for f in files {
        plan("send", &f.meta.path, f.meta.size, out);
    }
    0
}

/// What `get` does after expanding its names.
pub(super) enum GetPlan {
    /// Fetch these names; so many NAMEs matched nothing.
    Fetch(Vec<String>, usize),
    /// Nothing more to do (a dry run), with so many failures.
    Done(usize),
}

/// The server's listing under `prefix`, for globs and dry runs.
fn list_remote(
    rt: &dyn Runtime,
    cli: &Cli,
    args: &GetArgs,
    prefix: &str,
) -> anyhow::Result<Vec<ListEntry>> {
    use crate::client::{Dial, client_config};
    use ferry_app::agent::{Agent, Job};
    let dial = Dial::new(
        &args.from,
        args.retries,
        client_config(proto::Compression::Off),
        &args.transport,
    )?;
    let psk = crate::run::psk_for_client(cli)?;
    let collect = crate::remote_glob::Collect::default();
    let store: Arc<dyn Store> = Arc::new(ferry_disk::StdoutStore::new());
    let job = Job::List(prefix.to_owned());
    let mut agent = Agent::client(store, Box::new(collect.clone()), job);
    let (remote, timeout) = (dial.remote, dial.config.handshake_timeout);
    match &dial.udp {
        None => rt.run_client(remote, dial.retries, &dial.config, &psk, &mut agent),
        Some(t) => {
            crate::transport::run_udp(rt, remote, dial.retries, &dial.config, t, &psk, &mut agent)
        }
    }
    .map_err(|e| {
        let reason = crate::json::error_reason(&e);
        crate::json::tagged(reason, crate::retry::explain(e, remote, false, timeout))
    })?;
    let mut c = collect
        .0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(e) = c.1.first() {
        anyhow::bail!("cannot list {prefix:?} on {remote}: {e}");
    }
    Ok(std::mem::take(&mut c.0))
}

/// Expand `get`'s globs against the server's listing; with `--dry-run` print what would be
/// fetched. A NAME matching nothing is reported (`not_found`) and counted.
pub(super) fn expand_get(
    rt: &dyn Runtime,
    cli: &Cli,
    args: &GetArgs,
    out: &Output,
) -> anyhow::Result<GetPlan> {
    use crate::remote_glob::{is_glob, list_prefix, matches};
    if !args.dry_run && !args.names.iter().any(|n| is_glob(n)) {
        return Ok(GetPlan::Fetch(args.names.clone(), 0));
    }
    let (mut names, mut failures) = (Vec::new(), 0);
    for name in &args.names {
        if !args.dry_run && !is_glob(name) {
            names.push(name.clone());
            continue;
        }
        let prefix = if is_glob(name) {
            list_prefix(name)
        } else {
            name.as_str()
        };
        let entries = list_remote(rt, cli, args, prefix)?;
        let found = matches(name, &entries)?;
        if found.is_empty() {
            out.file_failed(name, "not_found", "matches nothing on the server");
            failures += 1;
        }
        for e in found {
            if args.dry_run {
                plan("get", &e.path, Some(e.size), out);
            } else if !names.contains(&e.path) {
                names.push(e.path.clone());
            }
        }
    }
    if args.out_is_stdout() && names.len() > 1 {
        anyhow::bail!(
            "--out - (standard output) takes exactly one file, and {} match {} (nothing was \
             fetched)",
            args.names.join(" "),
            names.len()
        );
    }
    Ok(if args.dry_run {
        GetPlan::Done(failures)
    } else {
        GetPlan::Fetch(names, failures)
    })
}
