//! A small git project inside the main workspace, made with the real `git` CLI so that its
//! `.git` directory is exactly what a user's would be. Dates, author and config are pinned so
//! the objects come out the same for the same seed.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::content::mtime;
use crate::rng::Rng;
use crate::text;

#[derive(Clone, Debug)]
pub(crate) struct GitSpec {
    /// Repository directory relative to the home.
    pub rel: String,
    pub seed: u64,
    /// Files in the working tree.
    pub files: usize,
    pub bytes: u64,
    /// Unix seconds of the first and last commit.
    pub start: i64,
    pub end: i64,
}

/// Whether a usable `git` is on PATH.
pub(crate) fn available() -> bool {
    Command::new("git")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Runs git in `dir` with a fixed identity and date, isolated from the user's git config.
pub(crate) fn git(dir: &Path, args: &[&str], when: i64) -> Result<()> {
    let date = format!("{when} +0000");
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=OpenClaw Agent",
            "-c",
            "user.email=agent@openclaw.local",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "core.autocrlf=false",
            "-c",
            "gc.auto=0",
            "-c",
            "core.fsync=none",
        ])
        .args(args)
        .env("GIT_AUTHOR_DATE", &date)
        .env("GIT_COMMITTER_DATE", &date)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("running git")?;
    if !out.status.success() {
        bail!("git {} in {} failed: {}", args.join(" "), dir.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

struct Tracked {
    rel: String,
    size: usize,
    seed: u64,
}

fn write(dir: &Path, f: &Tracked, version: u64, buf: &mut Vec<u8>) -> Result<()> {
    let path = dir.join(&f.rel);
    if let Some(p) = path.parent() {
        fs::create_dir_all(p)?;
    }
    buf.clear();
    let mut rng = Rng::new(f.seed ^ version);
    if f.rel.ends_with(".md") {
        text::markdown(&mut rng, buf, f.size, "Home Dashboard");
    } else {
        text::code(&mut rng, buf, f.size, b"\n");
    }
    fs::write(&path, &buf[..]).with_context(|| format!("writing {}", path.display()))
}

/// Creates the repository with four commits spread over the history.
pub(crate) fn create(root: &Path, spec: &GitSpec) -> Result<()> {
    let dir = root.join(&spec.rel);
    fs::create_dir_all(&dir)?;
    let mut rng = Rng::new(spec.seed);
    let n = spec.files.max(6);
    let avg = (spec.bytes / n as u64).max(200) as usize;
    let mut files: Vec<Tracked> = Vec::with_capacity(n);
    files.push(Tracked { rel: "README.md".into(), size: avg, seed: rng.next_u64() });
    for i in 1..n {
        let dir = *rng.pick(&["src", "src/components", "src/lib", "tests", "scripts"]);
        let ext = if dir == "tests" {
            "test.ts"
        } else if dir == "scripts" {
            "mjs"
        } else {
            "ts"
        };
        let rel = format!("{dir}/{}-{i}.{ext}", text::slug(&mut rng, 1));
        let size = rng.range(avg as u64 / 3, avg as u64 * 5 / 3) as usize;
        files.push(Tracked { rel, size, seed: rng.next_u64() });
    }
    fs::write(dir.join(".gitignore"), "node_modules/\ndist/\n*.log\n")?;
    fs::write(
        dir.join("package.json"),
        "{\n  \"name\": \"home-dashboard\",\n  \"private\": true,\n  \"type\": \"module\",\n  \"scripts\": { \"build\": \"tsc -p .\", \"test\": \"vitest run\" }\n}\n",
    )?;
    git(&dir, &["init", "-q"], spec.start)?;

    let mut buf = Vec::new();
    let commits = 4i64;
    let step = ((spec.end - spec.start) / commits).max(60);
    let first = (n * 6 / 10).max(1);
    for c in 0..commits {
        let when = spec.start + c * step;
        let range = if c == 0 {
            0..first
        } else {
            // Each later commit edits some files and adds the next batch.
            let add_to = first + (n - first) * c as usize / (commits as usize - 1);
            for f in files.iter().take(first) {
                if rng.chance(0.3) {
                    write(&dir, f, c as u64, &mut buf)?;
                }
            }
            (first + (n - first) * (c as usize - 1) / (commits as usize - 1))..add_to
        };
        for f in &files[range] {
            write(&dir, f, 0, &mut buf)?;
        }
        git(&dir, &["add", "-A"], when)?;
        let msg = format!(
            "{} {}",
            ["Add", "Fix", "Update", "Refactor"][c as usize % 4],
            text::title(&mut rng, 3).to_lowercase()
        );
        git(&dir, &["commit", "-q", "-m", &msg], when)?;
    }
    // Build output the project's .gitignore excludes.
    fs::create_dir_all(dir.join("dist"))?;
    buf.clear();
    text::code(&mut rng, &mut buf, avg * 2, b"\n");
    fs::write(dir.join("dist/app.js"), &buf)?;
    let last = spec.start + (commits - 1) * step;
    for f in files.iter().map(|f| f.rel.as_str()).chain(["README.md", ".gitignore", "package.json", "dist/app.js"]) {
        if let Ok(file) = fs::File::options().write(true).open(dir.join(f)) {
            let _ = file.set_modified(mtime(last));
        }
    }
    for d in ["src/components", "src/lib", "src", "tests", "scripts", "dist", ""] {
        if let Ok(file) = fs::File::open(dir.join(d)) {
            let _ = file.set_modified(mtime(last));
        }
    }
    // The index caches file stat data; refresh it after the mtime change, as a user's `git
    // status` would, so the next commit does not re-hash (and touch) every object.
    git(&dir, &["update-index", "-q", "--refresh"], last)?;
    Ok(())
}

/// One more commit: edit a file and add a new one. Returns the paths written.
pub(crate) fn tick_commit(dir: &Path, rng: &mut Rng, when: i64) -> Result<Vec<std::path::PathBuf>> {
    let readme = dir.join("README.md");
    let mut note = Vec::new();
    note.extend_from_slice(b"\n## Changelog\n\n- ");
    text::prose(rng, &mut note, 120);
    note.push(b'\n');
    let mut old = fs::read(&readme).unwrap_or_default();
    old.extend_from_slice(&note);
    fs::write(&readme, &old)?;
    let rel = format!("src/{}-{}.ts", text::slug(rng, 2), rng.hex(4));
    let new = dir.join(&rel);
    fs::create_dir_all(new.parent().expect("has parent"))?;
    let mut buf = Vec::new();
    let n = rng.range(800, 6_000) as usize;
    text::code(rng, &mut buf, n, b"\n");
    fs::write(&new, &buf)?;
    git(dir, &["add", "-A"], when)?;
    let msg = format!("Update {}", text::title(rng, 2).to_lowercase());
    git(dir, &["commit", "-q", "-m", &msg], when)?;
    Ok(vec![readme, new])
}
