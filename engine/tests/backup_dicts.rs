//! The dictionaries of a repository's first backup (format-spec §16): one per family, trained on
//! samples spread over the tree before anything is written, never on excluded files or files that
//! may hold secrets, and each used for the blobs of its own family.

use clawback_engine::backend::local::LocalBackend;
use clawback_engine::backend::{Kind, ObjectName};
use clawback_engine::commands::backup::{backup, BackupOptions, BackupResult, Presample};
use clawback_engine::error::Result;
use clawback_engine::format::blob::{self, BlobType, DictSource};
use clawback_engine::format::crypto::KdfParams;
use clawback_engine::format::dict::{Dict, Family};
use clawback_engine::format::id::DataId;
use clawback_engine::format::tree::Tree;
use clawback_engine::progress::Progress;
use clawback_engine::repo::{CacheOptions, InitOptions, Repository, Secret};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;

const SECRET: &str = "sk-live-9f8e7d6c5b4a39281706";
const EXCLUDED: &str = "do-not-keep-this-phrase-anywhere";

/// Words drawn by a small deterministic generator.
fn words(seed: u64, n: usize) -> Vec<&'static str> {
    const W: &[&str] = &[
        "garden", "agent", "memory", "session", "tool", "reply", "weather", "river", "schedule", "backup", "note",
        "summary", "project", "market", "letter", "travel", "recipe", "invoice", "meeting", "question",
    ];
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            W[(x % W.len() as u64) as usize]
        })
        .collect()
}

fn json_file(i: u64) -> String {
    (0..30)
        .map(|t| {
            format!(
                "{{\"type\":\"message\",\"id\":\"m{i}-{t}\",\"role\":\"{}\",\"content\":[{{\"type\":\"text\",\"text\":\"{}\"}}]}}\n",
                ["user", "assistant", "tool"][(t % 3) as usize],
                words(i * 100 + t, 12).join(" ")
            )
        })
        .collect()
}

fn prose_file(i: u64) -> String {
    let mut s = format!("# Notes on the {}\n\n", words(i, 2).join(" "));
    for p in 0..12 {
        s += &format!("- {}.\n", words(i * 50 + p, 14).join(" "));
    }
    s
}

fn code_file(i: u64) -> String {
    let mut s = format!("use std::collections::HashMap;\n\n/// {}\npub struct S{i} {{\n", words(i, 6).join(" "));
    for f in 0..10 {
        s += &format!("    pub {}_{f}: Option<HashMap<String, u64>>,\n", words(i * 30 + f, 1)[0]);
    }
    s += "}\n\nimpl S {\n";
    for f in 0..6 {
        s += &format!(
            "    pub fn {}_{f}(&self) -> u64 {{\n        self.len() as u64 + {f}\n    }}\n",
            words(i * 7 + f, 1)[0]
        );
    }
    s + "}\n"
}

struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let w = World { dir: tempfile::tempdir().unwrap() };
        let be = Arc::new(LocalBackend::new(w.dir.path().join("repo")));
        let opts = InitOptions { kdf: KdfParams { m_cost: 8, t_cost: 1, p_cost: 1 }, ..Default::default() };
        Repository::init(be, &Secret(b"pw".to_vec()), &opts).unwrap();
        w
    }
    fn src(&self) -> PathBuf {
        self.dir.path().join("src")
    }
    fn write(&self, rel: &str, text: &str) {
        let p = self.src().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    fn repo(&self) -> Repository {
        let be = Arc::new(LocalBackend::new(self.dir.path().join("repo")));
        Repository::open(be, &Secret(b"pw".to_vec()), &CacheOptions { dir: None, disabled: true }).unwrap()
    }
    fn opts(&self) -> BackupOptions {
        BackupOptions {
            paths: vec![self.src()],
            skip_paths: vec![self.dir.path().join("repo")],
            excludes: vec![format!("{}/private/", self.src().display())],
            ..Default::default()
        }
    }
    fn run(&self) -> BackupResult {
        backup(&self.repo(), &self.opts(), &Progress::default()).unwrap()
    }
    /// The content ids of the file at `rel` in the snapshot.
    fn content(&self, r: &BackupResult, rel: &str) -> Vec<DataId> {
        let repo = self.repo();
        let (_, snap) = repo.find_snapshot(&r.snapshot_id.unwrap().to_hex(), |_| true).unwrap();
        let mut tree: Tree = repo.load_tree(&snap.tree).unwrap();
        let path = self.src().join(rel);
        let comps: Vec<_> = path.components().skip(1).collect();
        for (i, c) in comps.iter().enumerate() {
            let n = tree.find(c.as_os_str().as_bytes()).unwrap().clone();
            if i + 1 == comps.len() {
                return n.content;
            }
            tree = repo.load_tree(&n.subtree.unwrap()).unwrap();
        }
        unreachable!()
    }
}

/// Serves one dictionary only: a blob decodes with it only if its frame names that dictionary.
struct Only(Arc<Dict>);

impl DictSource for Only {
    fn dicts_for(&self, zstd_id: u32) -> Result<Vec<Arc<Dict>>> {
        Ok(if zstd_id == self.0.zstd_id { vec![self.0.clone()] } else { vec![] })
    }
}

/// The dictionary a stored data blob was compressed with, among `dicts`.
fn dict_of(repo: &Repository, id: &DataId, dicts: &[Arc<Dict>]) -> Option<Family> {
    let plain = repo.read_data(id).unwrap();
    let loc = repo.index().get(&id.blob()).unwrap();
    let pack = ObjectName::of(&repo.index().pack_id(loc.pack));
    let stored = repo.backend().read_range(&pack, loc.offset as u64, loc.length as u64).unwrap();
    if blob::decode(repo.keys(), BlobType::Data, &id.blob(), &stored, plain.len()).is_ok() {
        return None; // compressed without a dictionary
    }
    let with = |d: &Arc<Dict>| {
        blob::decode_with(repo.keys(), &Only(d.clone()), BlobType::Data, &id.blob(), &stored, plain.len())
    };
    dicts.iter().find(|d| with(d).is_ok_and(|p| p == plain)).map(|d| d.family().expect("a tagged dictionary"))
}

#[test]
fn a_first_backup_trains_a_dictionary_per_family_on_samples_from_the_whole_tree() {
    let w = World::new();
    for i in 0..300 {
        w.write(&format!("agents/a{}/sessions/s{i}.jsonl", i % 7), &json_file(i));
        w.write(&format!("workspace/memory/{i}.md"), &prose_file(i));
        w.write(&format!("projects/p{}/src/m{i}.rs", i % 5), &code_file(i));
    }
    // Never sampled: a credentials folder and an excluded folder, both full of unique phrases.
    for i in 0..200 {
        w.write(&format!("credentials/c{i}.json"), &format!("{{\"apiKey\":\"{SECRET}\"}}\n{}", json_file(i)));
        w.write(&format!("private/n{i}.md"), &format!("{EXCLUDED}\n{}", prose_file(i)));
    }
    let r = w.run();
    let repo = w.repo();
    let dicts = repo.dictionaries().unwrap();
    let mut families: Vec<Option<Family>> = dicts.iter().map(|d| d.family()).collect();
    families.sort();
    assert_eq!(families, [Some(Family::Json), Some(Family::Prose), Some(Family::Code)], "one tagged per family");
    for d in &dicts {
        let b = d.bytes();
        for marker in [SECRET, EXCLUDED] {
            assert!(!b.windows(marker.len()).any(|x| x == marker.as_bytes()), "{marker} is in a dictionary");
        }
    }
    // Each file's blob is compressed with its family's dictionary, or, when the walk reached it
    // before that dictionary was trained (they train while the walk begins), with none; never
    // with another family's.
    for (rel, family) in [
        ("agents/a0/sessions/s0.jsonl", Family::Json),
        ("agents/a5/sessions/s299.jsonl", Family::Json),
        ("workspace/memory/0.md", Family::Prose),
        ("workspace/memory/299.md", Family::Prose),
        ("projects/p0/src/m0.rs", Family::Code),
        ("projects/p4/src/m299.rs", Family::Code),
    ] {
        let ids = w.content(&r, rel);
        let used = dict_of(&repo, &ids[0], &dicts);
        assert!(used.is_none() || used == Some(family), "{rel}: {used:?}");
    }
    // A later backup trains nothing more, and compresses each family with its own.
    let new = [
        ("workspace/memory/new.md", prose_file(1000), Family::Prose),
        ("agents/a0/sessions/new.jsonl", json_file(1000), Family::Json),
        ("projects/p0/src/new.rs", code_file(1000), Family::Code),
    ];
    for (rel, text, _) in &new {
        w.write(rel, text);
    }
    let r2 = w.run();
    assert_eq!(repo.backend().list(Kind::Dict).unwrap().len(), 3);
    for (rel, _, family) in new {
        let ids = w.content(&r2, rel);
        assert_eq!(dict_of(&w.repo(), &ids[0], &dicts), Some(family), "{rel}");
    }
}

#[test]
fn a_tree_with_nothing_to_sample_gets_no_dictionary() {
    let w = World::new();
    // Only files too small to sample, and secrets.
    for i in 0..50 {
        w.write(&format!("tiny/{i}.md"), "hi\n");
        w.write(&format!("keys/{i}.json"), &json_file(i));
    }
    w.run();
    assert!(w.repo().dictionaries().unwrap().is_empty(), "too little to train on");
}

/// The samples a CLI backup takes while the repository is opened (`Presample`) train the same
/// dictionaries as the samples the backup would take itself.
#[test]
fn samples_taken_while_the_repository_opens_train_the_same_dictionaries() {
    let w = World::new();
    for i in 0..200 {
        w.write(&format!("agents/a{}/sessions/s{i}.jsonl", i % 7), &json_file(i));
        w.write(&format!("workspace/memory/{i}.md"), &prose_file(i));
        w.write(&format!("private/n{i}.md"), &format!("{EXCLUDED}\n{}", prose_file(i)));
    }
    w.run();
    // The same tree into a second repository, sampled while it was opened.
    let be = Arc::new(LocalBackend::new(w.dir.path().join("early")));
    let init = InitOptions { kdf: KdfParams { m_cost: 8, t_cost: 1, p_cost: 1 }, ..Default::default() };
    Repository::init(be.clone(), &Secret(b"pw".to_vec()), &init).unwrap();
    let mut opts = w.opts();
    opts.skip_paths.push(w.dir.path().join("early"));
    opts.presample = Some(Presample::start(be.clone(), &opts));
    let early = Repository::open(be, &Secret(b"pw".to_vec()), &CacheOptions { dir: None, disabled: true }).unwrap();
    backup(&early, &opts, &Progress::default()).unwrap();
    assert!(opts.presample.as_ref().unwrap().used(), "the backup sampled again");
    // The same content; only the ids (a random salt) differ.
    let content = |r: &Repository| {
        let mut v: Vec<(Option<Family>, Vec<u8>)> =
            r.dictionaries().unwrap().iter().map(|d| (d.family(), d.bytes()[8..].to_vec())).collect();
        v.sort();
        v
    };
    let (a, b) = (content(&w.repo()), content(&early));
    assert_eq!(a.iter().map(|d| d.0).collect::<Vec<_>>(), [Some(Family::Json), Some(Family::Prose)]);
    assert!(a == b, "the dictionaries differ");
    for (_, d) in &b {
        assert!(!d.windows(EXCLUDED.len()).any(|x| x == EXCLUDED.as_bytes()), "an excluded file was sampled");
    }
}
