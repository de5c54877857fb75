//! Moving the `backup` section out of openclaw.json into clawback's own file (`clawback setup
//! --migrate-config`). OpenClaw 2026.9 validates openclaw.json strictly: the unknown `backup` key
//! keeps its gateway from starting, and `openclaw doctor --fix` deletes it (and the settings).
//!
//! [`plan`] writes nothing: it works out clawback's file with the section merged in and
//! openclaw.json without the key. The merge keeps what is in effect: where clawback's file already
//! sets a key, its value stays (it always beat openclaw.json's), and only keys it does not set are
//! added. openclaw.json is edited as text ([`super::json5_edit`]), so its comments, formatting and
//! `$include`s stay; the edit is parsed back and compared before anything is written. A `backup`
//! key that comes from a file openclaw.json includes is refused: that file is the user's to edit.
//! [`apply`] first copies openclaw.json beside itself (same mode), then writes clawback's file,
//! then openclaw.json.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::json5_edit::remove_top_level_key;
use crate::error::Error;
use crate::openclaw::config::{self as occonfig, OpenClawConfig};
use crate::openclaw::env::{clean, Env};
use crate::openclaw::include::{load_with_includes, parse_json5, read_json5, resolve_includes};
use crate::openclaw::paths::{config_path, state_dir};

/// The key OpenClaw rejects.
pub const SECTION_KEY: &str = "backup";

/// What a migration would do; nothing is written until [`apply`].
#[derive(Debug)]
pub struct Plan {
    /// openclaw.json, as OpenClaw finds it.
    pub openclaw_path: PathBuf,
    /// The file written for it (symlinks followed).
    openclaw_real: PathBuf,
    openclaw_text: String,
    /// clawback's own file: the one it reads, else where `setup` writes one.
    pub clawback_path: PathBuf,
    pub clawback_exists: bool,
    /// clawback's file's new text; `None` when it already has every setting.
    clawback_text: Option<String>,
    /// Keys (dotted) added to clawback's file.
    pub moved: Vec<String>,
    /// Keys clawback's file sets differently: its value stays (it was the one in effect).
    pub kept: Vec<String>,
    /// Keys both files set to the same value.
    pub same: Vec<String>,
    /// Relative paths in the section made absolute (against openclaw.json's folder, as they were
    /// read), because clawback's file lives in another folder.
    pub made_absolute: Vec<String>,
    /// clawback's file had JSON5 syntax or comments, which its rewrite as JSON does not keep.
    pub reformats_clawback: bool,
    /// The section used `$include`; the included content is what moves (those files stay).
    pub section_had_includes: bool,
}

/// What [`apply`] wrote.
#[derive(Debug)]
pub struct Applied {
    /// The copy of openclaw.json made before it was changed.
    pub openclaw_copy: PathBuf,
    /// The copy of clawback's file made before a rewrite that drops its comments.
    pub clawback_copy: Option<PathBuf>,
    /// Whether clawback's file was written.
    pub clawback_written: bool,
}

/// openclaw.json's path when the config OpenClaw reads has a top-level `backup` key (in the file
/// itself or one it includes).
pub fn find_section(env: &Env) -> Result<Option<PathBuf>, Error> {
    let oc = occonfig::load(env)?;
    Ok(oc.raw.get(SECTION_KEY).map(|_| oc.path.clone()))
}

/// Plans the move; `Ok(None)` when openclaw.json has no `backup` section (nothing to migrate).
/// `explicit` is clawback's file as `--config` or `CLAWBACK_CONFIG` names it (it may not exist
/// yet).
pub fn plan(env: &Env, explicit: Option<&Path>) -> Result<Option<Plan>, Error> {
    let state = state_dir(env);
    let oc_path = config_path(env, &state);
    if !oc_path.exists() {
        return Ok(None);
    }
    let oc = occonfig::load_from(env, &state, &oc_path)?;
    let Some(section) = oc.raw.get(SECTION_KEY).cloned() else {
        return Ok(None);
    };
    let Value::Object(mut section) = section else {
        return Err(Error::Other(format!(
            "{}: `{SECTION_KEY}` is not an object, so there are no settings to move; delete the key by hand",
            oc_path.display()
        )));
    };
    let real = std::fs::canonicalize(&oc_path).map_err(|e| Error::io("cannot resolve", &oc_path, e))?;
    let text = std::fs::read_to_string(&real).map_err(|e| Error::io("cannot read", &real, e))?;
    let top = parse_json5(&oc_path, &text)?;
    let new_text = match remove_top_level_key(&text, SECTION_KEY) {
        Ok(Some(t)) => t,
        Ok(None) => return Err(in_included_file(&oc)),
        Err(why) => {
            return Err(Error::Other(format!(
                "cannot edit {} as text ({why}); nothing was changed: move the `{SECTION_KEY}` section into clawback's \
                 file by hand",
                oc_path.display()
            )))
        }
    };
    // The edit must be exactly "the same document without the key", and the key must not come
    // back from an included file.
    let mut want = top.clone();
    let section_had_includes = want.get(SECTION_KEY).is_some_and(has_include);
    if let Some(o) = want.as_object_mut() {
        o.remove(SECTION_KEY);
    }
    let edited = parse_json5(&oc_path, &new_text).ok().filter(|v| *v == want).ok_or_else(|| {
        Error::Other(format!(
            "removing `{SECTION_KEY}` from {} as text did not give the same document without it; nothing was \
                 changed: move the section into clawback's file by hand",
            oc_path.display()
        ))
    })?;
    let roots = include_roots(env);
    let after = resolve_includes(edited, &oc_path, &roots)?;
    if after.value.get(SECTION_KEY).is_some() {
        return Err(in_included_file(&oc));
    }

    // clawback's file.
    let clawback_path = match explicit {
        Some(p) => env.resolve_user_path(&p.to_string_lossy()),
        None => super::find_config_file(env, &state, None)?.unwrap_or_else(|| state.join("clawback.json")),
    };
    let clawback_exists = clawback_path.exists();
    if clawback_exists && std::fs::canonicalize(&clawback_path).is_ok_and(|c| c == real) {
        return Err(Error::Other(format!(
            "clawback's config file is openclaw.json itself ({}); point --config or CLAWBACK_CONFIG at a file of its \
             own (e.g. {}), then run this again",
            clawback_path.display(),
            state.join("clawback.json").display()
        )));
    }
    let (mut raw, effective, reformats_clawback) = if clawback_exists {
        let text = std::fs::read_to_string(&clawback_path).map_err(|e| Error::io("cannot read", &clawback_path, e))?;
        let raw = parse_json5(&clawback_path, &text)?;
        let effective = load_with_includes(&clawback_path, env)?.value;
        (raw, effective, serde_json::from_str::<Value>(&text).is_err())
    } else {
        (Value::Object(Map::new()), Value::Object(Map::new()), false)
    };
    // A file wrapped as `{ backup: {...} }` is read as the section it wraps.
    let wrapped = effective.get(SECTION_KEY).is_some();
    let eff_section = if wrapped { effective.get(SECTION_KEY) } else { Some(&effective) };
    let eff_section = eff_section.and_then(Value::as_object).cloned().unwrap_or_default();

    let oc_dir = oc_path.parent().unwrap_or(Path::new("/"));
    let made_absolute =
        if clawback_path.parent() != Some(oc_dir) { absolutize(&mut section, oc_dir) } else { Vec::new() };
    let mut d = Diff::default();
    diff(&section, Some(&eff_section), &[], &mut d);

    let clawback_text = if d.add.is_empty() && clawback_exists {
        None
    } else {
        let target = if wrapped { raw.get_mut(SECTION_KEY) } else { Some(&mut raw) };
        let target = target.ok_or_else(|| not_object(&clawback_path))?;
        for (path, v) in &d.add {
            insert(target, path, v.clone()).map_err(|_| not_object(&clawback_path))?;
        }
        let mut t = serde_json::to_string_pretty(&raw).map_err(|e| Error::Other(e.to_string()))?;
        t.push('\n');
        Some(t)
    };
    let dotted = |p: &Vec<String>| p.join(".");
    Ok(Some(Plan {
        openclaw_path: oc_path.clone(),
        openclaw_real: real,
        openclaw_text: new_text,
        clawback_path,
        clawback_exists,
        reformats_clawback: reformats_clawback && clawback_text.is_some(),
        clawback_text,
        moved: d.add.iter().map(|(p, _)| dotted(p)).collect(),
        kept: d.kept.iter().map(dotted).collect(),
        same: d.same.iter().map(dotted).collect(),
        made_absolute,
        section_had_includes,
    }))
}

/// Writes the plan: a copy of openclaw.json (`openclaw.json.pre-clawback-<stamp>`, its mode),
/// clawback's file (0600 when new; a rewrite keeps its mode, and a copy first when comments
/// would be lost), then openclaw.json without the key (same mode, replaced atomically).
pub fn apply(plan: &Plan, stamp: &str) -> Result<Applied, Error> {
    let openclaw_copy = copy_beside(&plan.openclaw_real, stamp)?;
    let mut clawback_copy = None;
    if let Some(text) = &plan.clawback_text {
        if plan.clawback_exists {
            if plan.reformats_clawback {
                clawback_copy = Some(copy_beside(&plan.clawback_path, stamp)?);
            }
            let real = std::fs::canonicalize(&plan.clawback_path)
                .map_err(|e| Error::io("cannot resolve", &plan.clawback_path, e))?;
            let mode = std::fs::metadata(&real).map_err(|e| Error::io("cannot read", &real, e))?.mode() & 0o7777;
            write_atomic(&real, text, mode)?;
        } else {
            if let Some(dir) = plan.clawback_path.parent() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|e| Error::io("cannot create", dir, e))?;
            }
            write_atomic(&plan.clawback_path, text, 0o600)?;
        }
    }
    let mode =
        std::fs::metadata(&plan.openclaw_real).map_err(|e| Error::io("cannot read", &plan.openclaw_real, e))?.mode()
            & 0o7777;
    write_atomic(&plan.openclaw_real, &plan.openclaw_text, mode)?;
    Ok(Applied { openclaw_copy, clawback_copy, clawback_written: plan.clawback_text.is_some() })
}

use std::os::unix::fs::DirBuilderExt;

fn not_object(p: &Path) -> Error {
    Error::Other(format!(
        "{}: the settings cannot be merged into it (a key that holds an object in openclaw.json's section is not \
         an object there); nothing was changed",
        p.display()
    ))
}

/// The refusal when the `backup` key lives in a file openclaw.json includes, naming the files
/// that have one at their top level.
fn in_included_file(oc: &OpenClawConfig) -> Error {
    let holders: Vec<String> = oc
        .files
        .iter()
        .skip(1)
        .filter(|f| read_json5(f).is_ok_and(|v| v.get(SECTION_KEY).is_some()))
        .map(|f| f.display().to_string())
        .collect();
    let which = if holders.is_empty() {
        format!(
            "one of the files it includes ({})",
            oc.files.iter().skip(1).map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
        )
    } else {
        holders.join(", ")
    };
    Error::Other(format!(
        "the `{SECTION_KEY}` section of {} comes from {which} through `$include`; clawback edits only openclaw.json \
         itself, so nothing was changed: move the section from that file into clawback's file by hand (or delete it \
         there), then run `clawback setup --migrate-config` again",
        oc.path.display()
    ))
}

fn include_roots(env: &Env) -> Vec<PathBuf> {
    env.get("OPENCLAW_INCLUDE_ROOTS")
        .map(|s| s.split(':').filter(|p| !p.trim().is_empty()).map(|p| env.resolve_user_path(p)).collect())
        .unwrap_or_default()
}

fn has_include(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.contains_key(crate::openclaw::include::INCLUDE_KEY) || m.values().any(has_include),
        Value::Array(a) => a.iter().any(has_include),
        _ => false,
    }
}

/// Relative paths in the section, made absolute against `base` (how they were read from
/// openclaw.json); `~` and `${VAR}` forms are left as written.
fn absolutize(section: &mut Map<String, Value>, base: &Path) -> Vec<String> {
    let mut changed = Vec::new();
    let mut fix = |v: &mut Value, key: &str| {
        if let Value::String(s) = v {
            let t = s.trim();
            if !t.is_empty() && !t.starts_with('/') && !t.starts_with('~') && !t.starts_with('$') {
                *s = clean(&base.join(t)).to_string_lossy().into_owned();
                changed.push(key.to_string());
            }
        }
    };
    let mut root = Value::Object(std::mem::take(section));
    match root.pointer_mut("/include/extraPaths") {
        Some(Value::Array(items)) => items.iter_mut().for_each(|i| fix(i, "include.extraPaths")),
        Some(v) => fix(v, "include.extraPaths"),
        None => {}
    }
    for (ptr, key) in
        [("/storage/path", "storage.path"), ("/encryption/keyFile", "encryption.keyFile"), ("/envFile", "envFile")]
    {
        if let Some(v) = root.pointer_mut(ptr) {
            fix(v, key);
        }
    }
    if let Value::Object(m) = root {
        *section = m;
    }
    changed.dedup();
    changed
}

#[derive(Default)]
struct Diff {
    add: Vec<(Vec<String>, Value)>,
    kept: Vec<Vec<String>>,
    same: Vec<Vec<String>>,
}

/// What of `low` (openclaw.json's section) `high` (clawback's file, as read) lacks, sets the
/// same, or sets differently; objects are compared key by key, as the loader merges them.
fn diff(low: &Map<String, Value>, high: Option<&Map<String, Value>>, prefix: &[String], out: &mut Diff) {
    for (k, lv) in low {
        if k == "$schema" || lv.is_null() {
            continue;
        }
        let mut path = prefix.to_vec();
        path.push(k.clone());
        match high.and_then(|h| h.get(k)) {
            None | Some(Value::Null) => out.add.push((path, lv.clone())),
            Some(hv) if hv == lv => out.same.push(path),
            Some(Value::Object(ho)) => match lv {
                Value::Object(lo) => diff(lo, Some(ho), &path, out),
                _ => out.kept.push(path),
            },
            Some(_) => out.kept.push(path),
        }
    }
}

/// Sets `v` at `path` in `target`, creating the objects on the way.
fn insert(target: &mut Value, path: &[String], v: Value) -> Result<(), ()> {
    let Value::Object(m) = target else { return Err(()) };
    let (first, rest) = path.split_first().ok_or(())?;
    if rest.is_empty() {
        m.insert(first.clone(), v);
        return Ok(());
    }
    let next = m.entry(first.clone()).or_insert_with(|| Value::Object(Map::new()));
    if next.is_null() {
        *next = Value::Object(Map::new());
    }
    insert(next, rest, v)
}

/// `<file>.pre-clawback-<stamp>` beside `p`, with `p`'s mode; never over an existing file.
fn copy_beside(p: &Path, stamp: &str) -> Result<PathBuf, Error> {
    let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let meta = std::fs::metadata(p).map_err(|e| Error::io("cannot read", p, e))?;
    let data = std::fs::read(p).map_err(|e| Error::io("cannot read", p, e))?;
    for n in 1.. {
        let suffix = if n == 1 { String::new() } else { format!("-{n}") };
        let dest = p.with_file_name(format!("{name}.pre-clawback-{stamp}{suffix}"));
        let f = std::fs::OpenOptions::new().write(true).create_new(true).mode(meta.mode() & 0o7777).open(&dest);
        match f {
            Ok(mut f) => {
                // The mode asked for is filtered by the umask; set it exactly.
                f.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o7777))
                    .and_then(|_| f.write_all(&data))
                    .and_then(|_| f.sync_all())
                    .map_err(|e| Error::io("cannot write", &dest, e))?;
                return Ok(dest);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io("cannot create", &dest, e)),
        }
    }
    unreachable!("some numbered name is free")
}

/// Writes `text` to a temporary file beside `p` with `mode`, then renames it over `p`.
fn write_atomic(p: &Path, text: &str, mode: u32) -> Result<(), Error> {
    let dir = p.parent().unwrap_or(Path::new("."));
    let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.clawback-{}.tmp", std::process::id()));
    let res = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, p)
    })();
    res.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io("cannot write", p, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load;
    use std::fs;

    struct Fx {
        _t: tempfile::TempDir,
        home: PathBuf,
    }

    fn fx() -> Fx {
        let t = tempfile::tempdir().unwrap();
        let home = t.path().canonicalize().unwrap();
        fs::create_dir(home.join(".openclaw")).unwrap();
        Fx { _t: t, home }
    }

    impl Fx {
        fn env(&self) -> Env {
            Env::from_pairs([("HOME", self.home.to_str().unwrap())])
        }
        fn write(&self, rel: &str, text: &str) -> PathBuf {
            let p = self.home.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, text).unwrap();
            p
        }
        fn read(&self, rel: &str) -> String {
            fs::read_to_string(self.home.join(rel)).unwrap()
        }
    }

    const OC: &str = r#"// my gateway
{
  gateway: { port: 18789 },   // local
  backup: {
    schedule: "2h",
    include: { extraPaths: ["notes"] },
    retention: { maxBackups: 10, keepDaily: 7 },
    encryption: { passphrase: "${CLAWBACK_PASSWORD}" },
  },
  tools: { profile: "full" },
}
"#;

    #[test]
    fn moves_into_a_new_file_and_keeps_the_settings() {
        let f = fx();
        f.write(".openclaw/openclaw.json", OC);
        fs::set_permissions(f.home.join(".openclaw/openclaw.json"), fs::Permissions::from_mode(0o640)).unwrap();
        let env = f.env().with("CLAWBACK_PASSWORD", "pw");
        let before = load(&env, None).unwrap().config;
        let p = plan(&env, None).unwrap().expect("a section to move");
        assert!(!p.clawback_exists && p.kept.is_empty());
        assert_eq!(p.clawback_path, f.home.join(".openclaw/clawback.json"));
        assert!(p.made_absolute.is_empty(), "same folder: {:?}", p.made_absolute);
        let a = apply(&p, "20261204T000000Z").unwrap();
        let copy = f.home.join(".openclaw/openclaw.json.pre-clawback-20261204T000000Z");
        assert_eq!(a.openclaw_copy, copy);
        assert_eq!(fs::read_to_string(&copy).unwrap(), OC);
        assert_eq!(fs::metadata(&copy).unwrap().mode() & 0o777, 0o640);
        assert_eq!(fs::metadata(f.home.join(".openclaw/openclaw.json")).unwrap().mode() & 0o777, 0o640);
        let oc = f.read(".openclaw/openclaw.json");
        assert!(oc.contains("// my gateway") && oc.contains("// local") && !oc.contains("backup"), "{oc}");
        assert_eq!(fs::metadata(f.home.join(".openclaw/clawback.json")).unwrap().mode() & 0o777, 0o600);
        let after = load(&env, None).unwrap();
        assert_eq!(after.config, before, "the settings in effect are the same");
        assert_eq!(after.sources, vec![f.home.join(".openclaw/clawback.json")]);
        assert!(f.read(".openclaw/clawback.json").contains("${CLAWBACK_PASSWORD}"), "references stay references");
        assert!(plan(&env, None).unwrap().is_none(), "a second run has nothing to migrate");
    }

    #[test]
    fn merges_into_an_existing_file_whose_values_win() {
        let f = fx();
        f.write(".openclaw/openclaw.json", OC);
        let cb = f.write(
            ".config/clawback/config.json",
            "// mine\n{ schedule: \"1d\", retention: { keepDaily: 7, keepWeekly: 4 }, storage: { path: \"/r\" } }",
        );
        let env = f.env().with("CLAWBACK_PASSWORD", "pw");
        let before = load(&env, None).unwrap().config;
        let p = plan(&env, None).unwrap().unwrap();
        assert_eq!(p.clawback_path, cb);
        assert_eq!(p.kept, vec!["schedule"]);
        assert_eq!(p.same, vec!["retention.keepDaily"]);
        let mut moved = p.moved.clone();
        moved.sort();
        assert_eq!(moved, vec!["encryption", "include", "retention.maxBackups"]);
        assert_eq!(p.made_absolute, vec!["include.extraPaths"], "another folder: relative paths made absolute");
        assert!(p.reformats_clawback);
        let a = apply(&p, "s").unwrap();
        assert!(a.clawback_copy.as_ref().is_some_and(|c| fs::read_to_string(c).unwrap().contains("// mine")));
        let after = load(&env, None).unwrap().config;
        assert_eq!(after, before);
        assert_eq!(after.schedule.as_deref(), Some("1d"));
        assert_eq!(after.include.extra_paths, vec![f.home.join(".openclaw/notes")]);
    }

    #[test]
    fn refuses_a_section_from_an_included_file() {
        let f = fx();
        f.write(".openclaw/openclaw.json", "{ $include: \"./more.json5\", tools: {} }");
        f.write(".openclaw/more.json5", "{ backup: { schedule: \"2h\" } }");
        let e = plan(&f.env(), None).unwrap_err().to_string();
        assert!(e.contains("more.json5") && e.contains("$include") && e.contains("nothing was changed"), "{e}");
        // And when openclaw.json has one too, which the included file's would replace after removal.
        f.write(".openclaw/openclaw.json", "{ $include: \"./more.json5\", backup: { schedule: \"1d\" } }");
        let e = plan(&f.env(), None).unwrap_err().to_string();
        assert!(e.contains("more.json5"), "{e}");
        assert_eq!(f.read(".openclaw/openclaw.json"), "{ $include: \"./more.json5\", backup: { schedule: \"1d\" } }");
    }

    #[test]
    fn nothing_to_migrate() {
        let f = fx();
        assert!(plan(&f.env(), None).unwrap().is_none(), "no openclaw.json");
        f.write(".openclaw/openclaw.json", "{ tools: {} }");
        assert!(plan(&f.env(), None).unwrap().is_none());
        assert!(find_section(&f.env()).unwrap().is_none());
        f.write(".openclaw/openclaw.json", "{ backup: {} }");
        assert_eq!(find_section(&f.env()).unwrap(), Some(f.home.join(".openclaw/openclaw.json")));
    }
}
