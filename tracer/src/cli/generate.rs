//! `tracer generate DIR` (hidden, for packaging): the man pages and the shell
//! completions, generated from the command-line definitions themselves
//! (clap_mangen, clap_complete), so that they never disagree with `--help`.

use std::{fs, path::Path};

use anyhow::Context as _;
use clap::CommandFactory as _;
use clap_complete::Shell;

use super::Cli;

/// Writes DIR/man/tracer.1 (and a page per visible subcommand,
/// tracer-bench.1, tracer-check.1) and DIR/completions/ for bash, zsh and
/// fish; returns the files written.
pub fn generate(dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let man = dir.join("man");
    let completions = dir.join("completions");
    for d in [&man, &completions] {
        fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let cmd = Cli::command();
    let mut written = Vec::new();
    let mut pages = vec![("tracer".to_owned(), cmd.clone())];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("tracer-{}", sub.get_name());
        pages.push((name.clone(), sub.clone().name(name)));
    }
    for (name, page) in pages {
        let mut roff = Vec::new();
        clap_mangen::Man::new(page).render(&mut roff)?;
        let path = man.join(format!("{name}.1"));
        fs::write(&path, roff).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let path = clap_complete::generate_to(shell, &mut Cli::command(), "tracer", &completions)
            .with_context(|| format!("writing the {shell} completions"))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_pages_and_completions_name_the_options() {
        let dir = std::env::temp_dir().join(format!("tracer-generate-{}", std::process::id()));
        let files = generate(&dir).unwrap();
        let read = |p: &str| fs::read_to_string(dir.join(p)).unwrap();
        let man = read("man/tracer.1");
        assert!(
            man.starts_with(".ie \\n(.g .ds Aq") || man.contains(".TH tracer 1"),
            "{man}"
        );
        for want in ["per\\-process", "self\\-stats", "prometheus"] {
            assert!(man.contains(want), "no {want} in the man page");
        }
        assert!(read("man/tracer-bench.1").contains("sweep"));
        assert!(
            !dir.join("man/tracer-ping-pong.1").exists(),
            "hidden subcommands have no page"
        );
        assert!(read("completions/tracer.bash").contains("--per-process"));
        assert!(read("completions/_tracer").contains("--self-stats"));
        assert!(read("completions/tracer.fish").contains("per-process"));
        assert_eq!(files.len(), 3 + 3);
        let _ = fs::remove_dir_all(&dir);
    }
}
