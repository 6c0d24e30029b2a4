//! `completions SHELL` and `man`: generated from the clap definition of the running binary
//! (so they name it: `ferry`, `ferry-mio`...).

use std::io::Write;

use crate::cli::Shell;

/// Write `shell`'s completion script for `cmd` to `out`.
pub fn completions(shell: Shell, mut cmd: clap::Command, out: &mut dyn Write) {
    let name = cmd.get_name().to_owned();
    clap_complete::generate(clap_complete::Shell::from(shell), &mut cmd, name, out);
}

/// Write the manual page (roff) of `cmd` to `out`: the top level with every subcommand's
/// options and the `--help` examples.
///
/// # Errors
/// Writing failed.
pub fn man(cmd: clap::Command, out: &mut dyn Write) -> std::io::Result<()> {
    let mut cmd = cmd;
    cmd.build();
    clap_mangen::Man::new(cmd.clone()).render(out)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let title = format!("{} {}", cmd.get_name(), sub.get_name()).to_uppercase();
        writeln!(out, ".SH \"{title}\"")?;
        let page = clap_mangen::Man::new(sub.clone());
        page.render_description_section(out)?;
        page.render_options_section(out)?;
        page.render_extra_section(out)?;
    }
    Ok(())
}
