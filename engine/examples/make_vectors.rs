//! Writes the format test vectors: a small repository made from `format-spec/vectors/source` with a
//! known passphrase, and `vectors.json` with the keys and ids a reader must re-derive. Run once,
//! commit the output; `engine/tests/vectors.rs` checks the code against it ever after.
//!
//!     cargo run -p clawback-engine --example make_vectors

use clawback_engine::backend::local::LocalBackend;
use clawback_engine::backend::{Backend, Kind};
use clawback_engine::commands::backup::{backup, BackupOptions};
use clawback_engine::format::chunker::ChunkParams;
use clawback_engine::format::crypto::{derive_wrapping_key, KdfParams, KeyFile, Subkeys};
use clawback_engine::progress::Progress;
use clawback_engine::repo::{CacheOptions, InitOptions, Repository, Secret};
use std::path::Path;
use std::sync::Arc;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../format-spec/vectors");
    let repo_dir = root.join("repo");
    let _ = std::fs::remove_dir_all(&repo_dir);
    let pw = Secret(b"correct horse battery staple".to_vec());
    let kdf = KdfParams { m_cost: 64, t_cost: 1, p_cost: 1 };
    let be: Arc<dyn Backend> = Arc::new(LocalBackend::new(&repo_dir));
    let opts = InitOptions {
        kdf,
        chunker: ChunkParams { min: 4096, avg: 16384, max: 65536 },
        pack_size: 1 << 20,
        compression: 3,
    };
    Repository::init(be.clone(), &pw, &opts).unwrap();
    let repo = Repository::open(be.clone(), &pw, &CacheOptions { dir: None, disabled: true }).unwrap();
    let src = root.join("source").canonicalize().unwrap();
    let bo = BackupOptions {
        paths: vec![src.clone()],
        host: Some("vectors".into()),
        time: Some("2026-01-01T00:00:00Z".parse().unwrap()),
        tags: vec!["vectors".into()],
        ..Default::default()
    };
    let r = backup(&repo, &bo, &Progress::default()).unwrap();

    let (kname, _) = be.list(Kind::Key).unwrap().remove(0);
    let kf = KeyFile::parse(&be.read(Kind::Key, &kname).unwrap()).unwrap();
    let master = kf.open(&pw.0).unwrap().unwrap();
    use base64::Engine;
    let salt = base64::engine::general_purpose::STANDARD.decode(&kf.salt).unwrap();
    let wk = derive_wrapping_key(&pw.0, &salt, &kf.params).unwrap();
    let sk = Subkeys::derive(&master);
    let hello = std::fs::read(src.join("hello.txt")).unwrap();
    let v = serde_json::json!({
        "passphrase": "correct horse battery staple",
        "key_file": kname,
        "argon2id": { "m_cost_kib": kf.params.m_cost, "t_cost": kf.params.t_cost, "p_cost": kf.params.p_cost, "salt_b64": kf.salt },
        "wrapping_key": hex::encode(wk),
        "master_key": hex::encode(master.0),
        "chunk_id_key": hex::encode(sk.chunk_id_key),
        "data_key": hex::encode(sk.data_key),
        "chunker_seed": sk.chunker_seed.to_string(),
        "blob_id_of_hello_txt": repo.keys().blob_id(&hello).to_hex(),
        "snapshot_id": r.snapshot_id.unwrap().to_hex(),
        "source_path": src.to_string_lossy(),
        "files": ["hello.txt", "empty", "random.bin", "repeat.txt", "memory/2026-01-01.md"],
        "symlinks": { "link": "hello.txt" },
    });
    std::fs::write(root.join("vectors.json"), serde_json::to_string_pretty(&v).unwrap() + "\n").unwrap();
    println!("wrote {}", root.display());
}
