//! The conventional commands and texts: `completions`, `man`, `key fingerprint`, and the
//! examples `--help` shows after the options.

use clap::{Args, Subcommand, ValueEnum};

/// `completions SHELL`.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to write a completion script for (on standard output).
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: Shell,
}

/// The shells `completions` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// GNU Bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
    /// Elvish.
    Elvish,
    /// PowerShell.
    Powershell,
}

impl From<Shell> for clap_complete::Shell {
    fn from(s: Shell) -> Self {
        match s {
            Shell::Bash => Self::Bash,
            Shell::Zsh => Self::Zsh,
            Shell::Fish => Self::Fish,
            Shell::Elvish => Self::Elvish,
            Shell::Powershell => Self::PowerShell,
        }
    }
}

/// `key SUBCOMMAND`.
#[derive(Debug, Clone, Args)]
pub struct KeyArgs {
    /// What to do with the key.
    #[command(subcommand)]
    pub command: KeyCommand,
}

/// The `key` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum KeyCommand {
    /// Print the key's short fingerprint: compare it on both ends (it reveals nothing of the
    /// key).
    #[command(
        after_help = "Example:\n  ferry key fingerprint            # on the server and on the client: the same line"
    )]
    Fingerprint,
}

/// Shown after the top-level `--help`.
pub(super) const MAIN_EXAMPLES: &str = "\
Examples:
  ferry serve --root ~/inbox                 # prints `listening on [::]:6868`, creates the key
  ferry send photos/ notes.txt --to host     # copy the key file to the client first
  ferry get 'logs/*.txt' --from host --out .
  ferry ls -h --from host
  ferry completions bash > ~/.local/share/bash-completion/completions/ferry

Configuration: $FERRY_CONFIG, else $XDG_CONFIG_HOME/ferry/config.toml (remote, key, compress,
retries, exclude); flags override it. Key: --key PATH or FERRY_KEY (a path), else FERRY_KEY_DATA
(the key file's text), else the config's key, else ~/.config/ferry/key.";

/// Shown after `send --help`.
pub(super) const SEND_EXAMPLES: &str = "\
Examples:
  ferry send report.pdf --to host:6868
  ferry send project/ --to host --exclude '*.o' --exclude target/
  tar c dir | ferry send - --as dir.tar --to host
  ferry send big.iso --to host --bwlimit 10M --dry-run";

/// Shown after `get --help`.
pub(super) const GET_EXAMPLES: &str = "\
Examples:
  ferry get report.pdf --from host
  ferry get 'logs/*.txt' --from host --out ./logs
  ferry get notes.txt --from host --out - | less";

/// Shown after `ls --help`.
pub(super) const LS_EXAMPLES: &str = "\
Examples:
  ferry ls --from host
  ferry ls -h logs/ --from host --json";

/// Shown after `serve --help`.
pub(super) const SERVE_EXAMPLES: &str = "\
Examples:
  ferry serve --root /srv/ferry --listen 0.0.0.0:6868
  ferry serve --json        # one JSON object per received file";

/// Shown after `keygen --help`.
pub(super) const KEYGEN_EXAMPLES: &str = "\
Examples:
  ferry keygen                       # prints the path and the fingerprint
  ferry keygen --out ci.key --json";
