//! `darkswap release`: sign a build of the web app, and check a copy of one (a directory, or
//! what a relay serves) against its publisher's PeerId (darkswap_release does the checking).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use darkswap_net::libp2p::PeerId;
use darkswap_release::{Release, FILE_NAME, INDEX};

#[derive(Args)]
pub struct ReleaseArgs {
    #[command(subcommand)]
    command: ReleaseCommand,
}

#[derive(Subcommand)]
enum ReleaseCommand {
    /// Sign every file of a build (e.g. web/dist): writes release.txt into it.
    Sign {
        /// The built web app's directory.
        #[arg(long, default_value = "web/dist")]
        dir: PathBuf,
        /// The publisher's ed25519 key file (its PeerId is printed). Outside the build's
        /// directory, which is published.
        #[arg(long)]
        key: PathBuf,
        /// Create the key file if it does not exist (a new publisher: announce its PeerId).
        #[arg(long)]
        create_key: bool,
        /// The version text to sign with it, e.g. "0.1.0 d4626d2".
        #[arg(long)]
        version: String,
    },
    /// Check a copy against its publisher: every signed file present and unchanged, and (for a
    /// directory) nothing unsigned beside them. Exits non-zero on the first difference.
    Verify {
        /// The publisher's PeerId, as the publisher announced it.
        #[arg(long)]
        publisher: PeerId,
        /// A directory holding the copy.
        #[arg(long, conflicts_with = "url", required_unless_present = "url")]
        dir: Option<PathBuf>,
        /// Where the copy is served, e.g. a relay's http://host:8080/
        #[arg(long)]
        url: Option<String>,
    },
}

pub fn run(args: ReleaseArgs) -> Result<()> {
    match args.command {
        ReleaseCommand::Sign {
            dir,
            key,
            create_key,
            version,
        } => {
            let files = read_dir(&dir)?;
            let parent = key
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let key_dir = parent
                .canonicalize()
                .with_context(|| format!("cannot find {}", parent.display()))?;
            if key_dir.starts_with(dir.canonicalize()?) {
                bail!(
                    "the key {} is inside {}, which is published: keep it elsewhere",
                    key.display(),
                    dir.display()
                );
            }
            if !key.exists() && !create_key {
                bail!(
                    "no key file {} (give --create-key to make a new publisher key)",
                    key.display()
                );
            }
            let keypair = darkswap_auth::keyfile::load_or_create_keypair(&key)?;
            let text = darkswap_release::sign(&keypair, &version, &files)?;
            let out = dir.join(FILE_NAME);
            std::fs::write(&out, &text)
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!(
                "signed {} files of {} as {}: {}",
                files.len(),
                dir.display(),
                keypair.public().to_peer_id(),
                out.display()
            );
        }
        ReleaseCommand::Verify {
            publisher,
            dir: Some(dir),
            ..
        } => {
            let text = read(&dir.join(FILE_NAME))?;
            let release = darkswap_release::verify(&text, &publisher)?;
            let files = read_dir(&dir)?;
            for (path, bytes) in &files {
                release.check(path, bytes)?;
            }
            for path in release.paths() {
                if !files.iter().any(|(p, _)| p == path) {
                    bail!("{path} is signed but missing from {}", dir.display());
                }
            }
            print_checked(&release, &dir.display().to_string());
        }
        ReleaseCommand::Verify {
            publisher,
            url: Some(url),
            ..
        } => {
            let root = url.trim_end_matches('/');
            let release = darkswap_release::verify(&fetch(root, FILE_NAME)?, &publisher)?;
            for path in release.paths() {
                release.check(path, &fetch(root, path)?)?;
            }
            // What a browser opening the address gets is the signed page too.
            release
                .check(INDEX, &fetch(root, "")?)
                .context("the page served at / is not the signed index.html")?;
            print_checked(&release, root);
        }
        ReleaseCommand::Verify { .. } => bail!("give --dir or --url"),
    }
    Ok(())
}

fn print_checked(release: &Release, place: &str) {
    println!(
        "verified: {place} holds release {:?} of {}, {} files, all as signed",
        release.version(),
        release.publisher(),
        release.paths().count()
    );
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Every file under `dir` but release.txt, by its `/`-separated path relative to `dir`.
fn read_dir(dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(at) = pending.pop() {
        let entries =
            std::fs::read_dir(&at).with_context(|| format!("cannot list {}", at.display()))?;
        for entry in entries {
            let entry = entry?;
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_symlink() {
                bail!(
                    "{} is a symbolic link: a build holds plain files only",
                    path.display()
                );
            }
            if kind.is_dir() {
                pending.push(path);
                continue;
            }
            let relative = path
                .strip_prefix(dir)?
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            if relative != FILE_NAME {
                files.push((relative, read(&path)?));
            }
        }
    }
    files.sort();
    Ok(files)
}

/// GET `root/path`, capped; anything but 200 is a failure.
fn fetch(root: &str, path: &str) -> Result<Vec<u8>> {
    let url = format!("{root}/{path}");
    let (status, body) = crate::wallet::get(&url, false)?;
    if status != 200 {
        bail!("{url} answered {status}");
    }
    Ok(body)
}
