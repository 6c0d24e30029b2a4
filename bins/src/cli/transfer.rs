//! The transfer options `send` and `get` share beyond the connection: what to leave out of a
//! directory send, how fast to send, and the dry run.

use clap::Args;

/// `send --exclude PATTERN... [--no-gitignore] [--bwlimit RATE] [--dry-run]`.
#[derive(Debug, Clone, Default, Args)]
pub struct SendOptions {
    /// Leave out files and directories matching this gitignore-style pattern (repeatable),
    /// e.g. `*.o`, `target/`, `/build`; matched against paths inside each directory sent.
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,

    /// Send what `.gitignore`, `.ignore` and `.git/info/exclude` files under a directory
    /// would leave out (by default they are honoured in directory sends).
    #[arg(long)]
    pub no_gitignore: bool,

    /// Send at most this many bytes per second (`500K`, `10M`, `1G`; powers of 1024);
    /// `0` is no limit.
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub bwlimit: Option<u64>,

    /// Print what would be sent (name and size) and exit: connect to nothing, touch nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,
}

/// A byte rate: [`crate::partials::parse_size`] with an optional `/s`.
///
/// # Errors
/// A message for clap.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    crate::partials::parse_size(s.trim().trim_end_matches("/s"))
        .map_err(|e| e.replace("size like", "rate like"))
}
