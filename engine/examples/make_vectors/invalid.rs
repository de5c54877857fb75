//! The negative vectors (`format-spec/vectors/invalid/`): each file is one object a reader must
//! refuse, made from the good vectors' objects and keys by one change; `manifest.json` gives, per
//! file, the object's kind, what a reader needs besides the bytes (its name, or a blob's type, id
//! and indexed length) and the expected outcome.

use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use base64::Engine;
use clawback_engine::format::crypto::{
    KeyFile, Keys, AAD_BLOB, AAD_CONFIG, AAD_INDEX, AAD_KEY, AAD_PACK_HEADER, AAD_SNAPSHOT,
};
use clawback_engine::format::dict::AAD_DICT;
use clawback_engine::format::id::{BlobId, ObjectId, PackId, TreeId};
use clawback_engine::format::index::IndexFile;
use clawback_engine::format::pack::{self, PackEntry};
use clawback_engine::format::tree::{Node, NodeKind, Tree};
use serde_json::{json, Value};
use std::path::Path;

/// The good objects the negative vectors are made from.
pub struct Base<'a> {
    pub keys: &'a Keys,
    /// The data key, to seal objects with nonces derived from their content (see `seal`).
    pub data_key: [u8; 32],
    /// A pack of trees (name, bytes): small, and with several entries.
    pub tree_pack: (String, Vec<u8>),
    /// hello.txt's blob: its id and stored bytes.
    pub hello: (BlobId, Vec<u8>),
    pub index: (String, Vec<u8>),
    pub snapshot: (String, Vec<u8>),
    pub snapshot_json: Value,
    pub config: Value,
    /// The key file: its name and bytes.
    pub key_file: (String, Vec<u8>),
    pub wrapping_key: [u8; 32],
    /// The repository's dictionary: its name, stored bytes and plaintext.
    pub dict: (String, Vec<u8>, Vec<u8>),
}

/// The outcome kinds, as the manifest and the spec name them.
const KINDS: &[(&str, &str)] = &[
    ("name", "the object's bytes do not hash to its name"),
    ("authentication", "AES-256-GCM-SIV refuses it: tampered, wrong associated data, wrong key, or too short"),
    ("length", "a length field disagrees with the bytes, the index, or a limit"),
    ("version", "an unknown version, or an unknown key derivation"),
    ("encoding", "not the encoding section 6, 9 or 11 defines, or not its canonical form"),
    ("unsafe-name", "a tree entry name that is not one path component"),
    ("order", "tree entries not sorted by name, or a name twice"),
    ("kind-mismatch", "a tree entry with a subtree that is not a directory, or a directory without one"),
    ("layout", "pack entries that do not tile the pack's blob area"),
    ("id", "a blob whose plaintext does not hash (keyed) to its id"),
    ("range", "a parameter outside the range the spec allows"),
    ("dictionary", "a blob compressed with a dictionary the repository does not hold"),
];

struct Out<'a> {
    dir: &'a Path,
    vectors: Vec<Value>,
}

impl Out<'_> {
    /// Writes one vector. `context` holds what a reader needs besides the bytes.
    fn put(&mut self, file: &str, object: &str, expect: &str, why: &str, bytes: &[u8], context: Value) {
        assert!(KINDS.iter().any(|(k, _)| *k == expect), "{expect}");
        std::fs::write(self.dir.join(file), bytes).unwrap();
        let mut v = json!({ "file": file, "object": object, "expect": expect, "why": why });
        if let Value::Object(m) = context {
            v.as_object_mut().unwrap().extend(m);
        }
        self.vectors.push(v);
    }

    /// An object stored under the hash of its own bytes (so only the check named by `expect` fails).
    fn named(&mut self, file: &str, object: &str, expect: &str, why: &str, bytes: &[u8]) {
        let name = ObjectId::of_bytes(bytes).to_hex();
        self.put(file, object, expect, why, bytes, json!({ "name": name }));
    }
}

fn raw(plain: &[u8]) -> Vec<u8> {
    [&[0u8][..], plain].concat()
}

fn zstd_declaring(plain: &[u8], declared: u64) -> Vec<u8> {
    let mut p = vec![1u8];
    p.extend_from_slice(&declared.to_le_bytes());
    p.extend_from_slice(&zstd::bulk::compress(plain, 3).unwrap());
    p
}

/// Seals `payload` as the engine does, but with a nonce derived from the associated data and the
/// payload rather than a random one, so that regenerating the vectors rewrites only those that
/// changed (AES-GCM-SIV stays safe when a nonce repeats).
fn seal(data_key: &[u8; 32], aad: &[&[u8]], payload: &[u8]) -> Vec<u8> {
    let aad = aad.concat();
    let nonce: [u8; 12] = blake3::hash(&[&aad[..], payload].concat()).as_bytes()[..12].try_into().unwrap();
    let ct = Aes256GcmSiv::new_from_slice(data_key)
        .unwrap()
        .encrypt(&Nonce::try_from(&nonce[..]).expect("a 12-byte nonce"), Payload { msg: payload, aad: &aad })
        .unwrap();
    [&nonce[..], &ct].concat()
}

fn assemble(blob_area: &[u8], sealed_header: &[u8]) -> Vec<u8> {
    let mut p = blob_area.to_vec();
    p.extend_from_slice(sealed_header);
    p.extend_from_slice(&(sealed_header.len() as u32).to_le_bytes());
    p
}

fn header(version: u8, entries: &[PackEntry]) -> Vec<u8> {
    postcard::to_allocvec(&(version, entries)).unwrap()
}

fn node(name: &[u8], kind: NodeKind) -> Node {
    Node {
        name: name.to_vec(),
        kind,
        mode: 0o644,
        uid: 1000,
        gid: 1000,
        mtime_ns: 1_767_225_600_000_000_000,
        ctime_ns: 1_767_225_600_000_000_000,
        dev: 2049,
        ino: 77,
        nlink: 1,
        size: 0,
        content: vec![],
        subtree: (kind == NodeKind::Dir).then_some(TreeId([4; 32])),
        target: vec![],
    }
}

fn tree(version: u8, nodes: Vec<Node>) -> Vec<u8> {
    // Not `Tree::new`, which would sort the nodes.
    Tree { version, nodes }.encode()
}

/// Writes every negative vector and the manifest; returns how many.
pub fn write(dir: &Path, b: &Base<'_>) -> usize {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let mut o = Out { dir, vectors: Vec::new() };
    let k = b.keys;
    let dk = &b.data_key;

    // Packs: a pack of trees, taken apart.
    let (tp_name, tp) = (&b.tree_pack.0, &b.tree_pack.1);
    let entries = pack::parse(k, &PackId::from_hex(tp_name).unwrap(), tp).unwrap();
    assert!(entries.len() >= 3, "the tree pack holds several trees");
    let hlen = u32::from_le_bytes(tp[tp.len() - 4..].try_into().unwrap()) as usize;
    let area = &tp[..tp.len() - 4 - hlen];
    let good_header = header(1, &entries);
    let sealed_header = |plain: &[u8]| seal(dk, &[AAD_PACK_HEADER], &raw(plain));

    let mut x = tp.clone();
    x[0] ^= 1;
    o.put(
        "pack-name-mismatch",
        "pack",
        "name",
        "one byte of the first blob flipped; stored under the pack's own name",
        &x,
        json!({ "name": tp_name }),
    );
    let mut x = tp.clone();
    let n = x.len();
    x[n - 4..].copy_from_slice(&(n as u32).to_le_bytes());
    o.named("pack-header-length-oversized", "pack", "length", "the trailer claims a header longer than the pack", &x);
    o.named("pack-too-short", "pack", "length", "three bytes: no room for the 4-byte trailer", &[1, 0, 0]);
    let mut x = tp.clone();
    x[n - 5] ^= 1;
    o.named(
        "pack-header-tag-tampered",
        "pack",
        "authentication",
        "the last byte of the sealed header's tag flipped",
        &x,
    );
    let x = assemble(area, &seal(dk, &[AAD_INDEX], &raw(&good_header)));
    o.named(
        "pack-header-wrong-aad",
        "pack",
        "authentication",
        "the header sealed with the index's associated data",
        &x,
    );
    let x = assemble(area, &sealed_header(&header(2, &entries)));
    o.named("pack-header-unknown-version", "pack", "version", "header version 2", &x);
    let mut e = entries.clone();
    e[1].offset += 1;
    let x = assemble(area, &sealed_header(&header(1, &e)));
    o.named("pack-header-gap", "pack", "layout", "the second entry starts one byte after the first ends", &x);
    let x = assemble(area, &sealed_header(&header(1, &entries[..entries.len() - 1])));
    o.named("pack-header-short-of-blobs", "pack", "layout", "the header lists every blob but the last", &x);
    let x = assemble(area, &seal(dk, &[AAD_PACK_HEADER], &zstd_declaring(&good_header, 1 << 40)));
    o.named("pack-header-declared-length-oversized", "pack", "length", "the header's zstd payload declares 1 TiB", &x);
    let x = assemble(area, &seal(dk, &[AAD_PACK_HEADER], &[&[2u8][..], &good_header].concat()));
    o.named("pack-header-unknown-flag", "pack", "encoding", "payload flag 2", &x);
    let mut h = good_header.clone();
    assert_eq!((h[0], h[1] as usize, h[2]), (1, entries.len(), 1), "version, count, first type");
    h[2] = 2;
    let x = assemble(area, &sealed_header(&h));
    o.named("pack-header-unknown-blob-type", "pack", "encoding", "the first entry's type is 2", &x);
    let x = assemble(area, &sealed_header(&[&good_header[..], &[0u8]].concat()));
    o.named("pack-header-trailing-bytes", "pack", "encoding", "one byte after the header's encoding", &x);
    // The first entry's offset, 0, as 80 00: version, count, type, the 32-byte id, then the offset.
    assert_eq!(good_header[35], 0, "the first entry's offset");
    let x = assemble(area, &sealed_header(&[&good_header[..35], &[0x80, 0x00], &good_header[36..]].concat()));
    o.named("pack-header-overlong-varint", "pack", "encoding", "the first entry's offset 0 as 80 00 instead of 00", &x);

    // Blobs: hello.txt's, as stored, read with what an index would say of it.
    let (hid, hs) = (&b.hello.0, &b.hello.1);
    let ctx =
        |ty: u8, id: &BlobId, raw_length: usize| json!({ "type": ty, "id": id.to_hex(), "raw_length": raw_length });
    let hello = b"hello, clawback\n";
    o.put(
        "blob-wrong-type",
        "blob",
        "authentication",
        "a data blob read as a tree (type 1 in its associated data)",
        hs,
        ctx(1, hid, hello.len()),
    );
    let other = k.blob_id(b"another blob");
    o.put(
        "blob-wrong-id",
        "blob",
        "authentication",
        "a blob read under another blob's id",
        hs,
        ctx(0, &other, hello.len()),
    );
    let mut x = hs.clone();
    let n = x.len();
    x[n - 1] ^= 1;
    o.put(
        "blob-tag-tampered",
        "blob",
        "authentication",
        "the last byte of the tag flipped",
        &x,
        ctx(0, hid, hello.len()),
    );
    o.put(
        "blob-truncated",
        "blob",
        "authentication",
        "20 bytes: shorter than nonce and tag",
        &hs[..20],
        ctx(0, hid, hello.len()),
    );
    let forged = b"hello, mallory!\n";
    let x = seal(dk, &[AAD_BLOB, &[0], &hid.0], &raw(forged));
    o.put(
        "blob-id-mismatch",
        "blob",
        "id",
        "sealed for hello.txt's id, but other bytes inside",
        &x,
        ctx(0, hid, forged.len()),
    );
    o.put(
        "blob-raw-length-mismatch",
        "blob",
        "length",
        "the index's length is one more than the plaintext's",
        hs,
        ctx(0, hid, hello.len() + 1),
    );
    let x = seal(dk, &[AAD_BLOB, &[0], &hid.0], &zstd_declaring(hello, 1 << 40));
    o.put(
        "blob-declared-length-oversized",
        "blob",
        "length",
        "a zstd payload declaring 1 TiB for a 16-byte blob",
        &x,
        ctx(0, hid, hello.len()),
    );
    let x = seal(dk, &[AAD_BLOB, &[0], &hid.0], &zstd_declaring(hello, hello.len() as u64 + 4));
    o.put(
        "blob-decompressed-length-short",
        "blob",
        "length",
        "the payload declares 20 bytes, the frame holds 16",
        &x,
        ctx(0, hid, hello.len() + 4),
    );
    let (first, second) = hello.split_at(7);
    let mut p = zstd_declaring(first, hello.len() as u64);
    p.extend_from_slice(&zstd::bulk::compress(second, 3).unwrap());
    let x = seal(dk, &[AAD_BLOB, &[0], &hid.0], &p);
    o.put(
        "blob-two-zstd-frames",
        "blob",
        "encoding",
        "the plaintext in two zstd frames (zstd alone decompresses both)",
        &x,
        ctx(0, hid, hello.len()),
    );
    let mut p = zstd_declaring(hello, hello.len() as u64);
    // A skippable frame: magic 0x184D2A50, a 4-byte length, that many bytes (zstd alone skips it).
    p.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 0xc1, 0xa3, 0xba, 0xc4]);
    let x = seal(dk, &[AAD_BLOB, &[0], &hid.0], &p);
    o.put(
        "blob-zstd-skippable-frame-after",
        "blob",
        "encoding",
        "a skippable zstd frame after the plaintext's frame",
        &x,
        ctx(0, hid, hello.len()),
    );

    // Trees: plaintexts, as a tree blob holds them.
    let none = json!({});
    let file = |n: &[u8]| node(n, NodeKind::File);
    for (f, name, why) in [
        ("tree-name-dotdot", &b".."[..], "an entry named .."),
        ("tree-name-dot", b".", "an entry named ."),
        ("tree-name-empty", b"", "an entry with an empty name"),
        ("tree-name-slash", b"a/b", "an entry named a/b"),
        ("tree-name-nul", b"a\0b", "an entry whose name holds a NUL byte"),
    ] {
        o.put(f, "tree", "unsafe-name", why, &tree(1, vec![file(name)]), none.clone());
    }
    o.put("tree-unsorted", "tree", "order", "entries b, a", &tree(1, vec![file(b"b"), file(b"a")]), none.clone());
    o.put(
        "tree-duplicate-name",
        "tree",
        "order",
        "two entries named a",
        &tree(1, vec![file(b"a"), file(b"a")]),
        none.clone(),
    );
    o.put("tree-unknown-version", "tree", "version", "tree version 2", &tree(2, vec![file(b"a")]), none.clone());
    let mut d = node(b"d", NodeKind::Dir);
    d.subtree = None;
    o.put(
        "tree-dir-without-subtree",
        "tree",
        "kind-mismatch",
        "a directory without a subtree",
        &tree(1, vec![d]),
        none.clone(),
    );
    let mut f = file(b"f");
    f.subtree = Some(TreeId([4; 32]));
    o.put("tree-file-with-subtree", "tree", "kind-mismatch", "a file with a subtree", &tree(1, vec![f]), none.clone());
    // One file entry "a": version 1, one node, name length 1, "a", kind 0, mode 0o644 = a4 03, ...
    let good = tree(1, vec![file(b"a")]);
    assert_eq!(good[..7], [1, 1, 1, b'a', 0, 0xa4, 0x03]);
    let n = good.len();
    assert_eq!(good[n - 2..], [0, 0], "subtree none, empty target");
    let mut x = good.clone();
    x[4] = 3;
    o.put("tree-unknown-kind", "tree", "encoding", "entry kind 3", &x, none.clone());
    let mut x = good.clone();
    x[n - 2] = 2;
    o.put("tree-bad-option-tag", "tree", "encoding", "the subtree's option tag is 2", &x, none.clone());
    let x = [&good[..5], &[0xff, 0xff, 0xff, 0xff, 0xff, 0x01], &good[7..]].concat();
    o.put(
        "tree-varint-overflow",
        "tree",
        "encoding",
        "the mode as a six-byte varint (a u32 takes at most five)",
        &x,
        none.clone(),
    );
    let x = [&good[..5], &[0xa4, 0x83, 0x00], &good[7..]].concat();
    o.put("tree-overlong-varint", "tree", "encoding", "the mode 0o644 as a4 83 00 instead of a4 03", &x, none.clone());
    let x = [&good[..], &[0]].concat();
    o.put("tree-trailing-bytes", "tree", "encoding", "one byte after the tree's encoding", &x, none.clone());
    o.put("tree-truncated", "tree", "encoding", "the last byte missing", &good[..n - 1], none.clone());

    // Index files.
    let (iname, ib) = (&b.index.0, &b.index.1);
    let idx = IndexFile::decode(k, iname, ib).unwrap();
    let mut x = ib.clone();
    x[20] ^= 1;
    o.put(
        "index-name-mismatch",
        "index",
        "name",
        "one byte flipped; stored under the file's own name",
        &x,
        json!({ "name": iname }),
    );
    let plain = postcard::to_allocvec(&idx).unwrap();
    o.named(
        "index-wrong-aad",
        "index",
        "authentication",
        "sealed with the snapshot's associated data",
        &seal(dk, &[AAD_SNAPSHOT], &raw(&plain)),
    );
    let mut i2 = idx.clone();
    i2.version = 2;
    let sealed_index = |f: &IndexFile| seal(dk, &[AAD_INDEX], &raw(&postcard::to_allocvec(f).unwrap()));
    o.named("index-unknown-version", "index", "version", "index version 2", &sealed_index(&i2));
    let x = seal(dk, &[AAD_INDEX], &raw(&[&plain[..], &[0]].concat()));
    o.named("index-trailing-bytes", "index", "encoding", "one byte after the index's encoding", &x);
    let mut i2 = idx.clone();
    i2.packs[0].size = (2 << 30) + 1;
    o.named(
        "index-pack-oversized",
        "index",
        "length",
        "a pack listed as 2 GiB and 1 byte, more than a pack may be",
        &sealed_index(&i2),
    );

    // Snapshots (plaintext JSON, stored raw so that the change is easy to see once decrypted).
    let (sname, sb) = (&b.snapshot.0, &b.snapshot.1);
    let sealed_snap = |v: &[u8]| seal(dk, &[AAD_SNAPSHOT], &raw(v));
    let mut x = sb.clone();
    x[20] ^= 1;
    o.put(
        "snapshot-name-mismatch",
        "snapshot",
        "name",
        "one byte flipped; stored under the snapshot's own name",
        &x,
        json!({ "name": sname }),
    );
    let s = serde_json::to_vec(&b.snapshot_json).unwrap();
    o.named(
        "snapshot-wrong-aad",
        "snapshot",
        "authentication",
        "sealed with the index's associated data",
        &seal(dk, &[AAD_INDEX], &raw(&s)),
    );
    let mut v = b.snapshot_json.clone();
    v["version"] = json!(2);
    o.named(
        "snapshot-unknown-version",
        "snapshot",
        "version",
        "snapshot version 2",
        &sealed_snap(&serde_json::to_vec(&v).unwrap()),
    );
    o.named("snapshot-not-json", "snapshot", "encoding", "the plaintext is not JSON", &sealed_snap(b"snapshot"));
    let mut v = b.snapshot_json.clone();
    v.as_object_mut().unwrap().remove("tree");
    o.named(
        "snapshot-missing-tree",
        "snapshot",
        "encoding",
        "no tree key",
        &sealed_snap(&serde_json::to_vec(&v).unwrap()),
    );
    let dup = serde_json::to_string(&b.snapshot_json).unwrap().replacen('{', "{\"version\":1,", 1);
    o.named("snapshot-duplicate-key", "snapshot", "encoding", "the key version twice", &sealed_snap(dup.as_bytes()));
    let dup = serde_json::to_string(&b.snapshot_json).unwrap().replacen('{', "{\"note\":1,\"note\":2,", 1);
    o.named(
        "snapshot-duplicate-unknown-key",
        "snapshot",
        "encoding",
        "a key no reader knows (note), twice",
        &sealed_snap(dup.as_bytes()),
    );
    let mut v = b.snapshot_json.clone();
    v["time"] = json!("2026-01-01 00:00:00");
    o.named(
        "snapshot-time-not-rfc3339",
        "snapshot",
        "encoding",
        "time 2026-01-01 00:00:00: no T, no offset",
        &sealed_snap(&serde_json::to_vec(&v).unwrap()),
    );

    // Config.
    let sealed_cfg = |v: &Value| seal(dk, &[AAD_CONFIG], &raw(&serde_json::to_vec(v).unwrap()));
    let mut c = b.config.clone();
    c["version"] = json!(3);
    o.put("config-unknown-version", "config", "version", "repository version 3", &sealed_cfg(&c), none.clone());
    let x = seal(dk, &[AAD_SNAPSHOT], &raw(&serde_json::to_vec(&b.config).unwrap()));
    o.put(
        "config-wrong-aad",
        "config",
        "authentication",
        "sealed with the snapshot's associated data",
        &x,
        none.clone(),
    );
    let mut c = b.config.clone();
    c["chunker"]["min"] = c["chunker"]["avg"].clone();
    o.put(
        "config-chunker-min-not-below-avg",
        "config",
        "range",
        "chunker min equal to avg",
        &sealed_cfg(&c),
        none.clone(),
    );
    let mut c = b.config.clone();
    c["id"] = json!("not-an-id");
    o.put("config-bad-id", "config", "range", "an id that is not 64 hex digits", &sealed_cfg(&c), none.clone());
    let mut c = b.config.clone();
    c["id"] = json!(c["id"].as_str().unwrap().to_uppercase());
    o.put("config-uppercase-id", "config", "range", "the id in uppercase hex digits", &sealed_cfg(&c), none.clone());
    let dup = serde_json::to_string(&b.config).unwrap().replacen('{', "{\"note\":1,\"note\":2,", 1);
    let x = seal(dk, &[AAD_CONFIG], &raw(dup.as_bytes()));
    o.put("config-duplicate-key", "config", "encoding", "a key no reader knows (note), twice", &x, none.clone());

    // Key files (the passphrase is that of vectors.json).
    let kf = &KeyFile::parse(&b.key_file.1).unwrap();
    let key = |f: &KeyFile| serde_json::to_vec_pretty(f).unwrap();
    let mut f = kf.clone();
    f.version = 2;
    o.put("key-unknown-version", "key", "version", "key file version 2", &key(&f), none.clone());
    let mut f = kf.clone();
    f.kdf = "scrypt".into();
    o.put("key-unknown-kdf", "key", "version", "kdf scrypt", &key(&f), none.clone());
    let mut f = kf.clone();
    f.params.m_cost = 2 << 20;
    o.put(
        "key-memory-cost-oversized",
        "key",
        "range",
        "m_cost 2 GiB, above the 1 GiB a reader allows",
        &key(&f),
        none.clone(),
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut data = b64.decode(&kf.data).unwrap();
    data[20] ^= 1;
    let mut f = kf.clone();
    f.data = b64.encode(&data);
    o.put("key-data-tampered", "key", "authentication", "one byte of the wrapped key flipped", &key(&f), none.clone());
    let cipher = Aes256GcmSiv::new_from_slice(&b.wrapping_key).unwrap();
    let nonce = [9u8; 12];
    let ct = cipher
        .encrypt(&Nonce::try_from(&nonce[..]).expect("a 12-byte nonce"), Payload { msg: &[7u8; 31], aad: AAD_KEY })
        .unwrap();
    let mut f = kf.clone();
    f.data = b64.encode([&nonce[..], &ct].concat());
    o.put(
        "key-wrapped-key-wrong-length",
        "key",
        "length",
        "the wrapped plaintext is 31 bytes, not 32",
        &key(&f),
        none.clone(),
    );
    let mut f = kf.clone();
    let mut salt: Vec<u8> = f.salt.bytes().collect();
    assert!(salt.ends_with(b"==") && salt.len() == 24, "16 bytes of salt");
    // The last symbol before the padding carries 2 bits of the salt and 4 zero bits: set one.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let i = ALPHABET.iter().position(|&c| c == salt[21]).unwrap();
    salt[21] = ALPHABET[i | 1];
    f.salt = String::from_utf8(salt).unwrap();
    o.put(
        "key-salt-non-canonical-base64",
        "key",
        "encoding",
        "the salt's base64 has a non-zero trailing bit",
        &key(&f),
        none.clone(),
    );
    let dup = String::from_utf8(key(kf)).unwrap().replacen('{', "{\n  \"note\": 1,\n  \"note\": 2,", 1);
    o.put("key-duplicate-key", "key", "encoding", "a key no reader knows (note), twice", dup.as_bytes(), none);
    let mut f = kf.clone();
    f.hostname = "elsewhere".into();
    o.put(
        "key-name-mismatch",
        "key",
        "name",
        "the key file with its hostname changed (it still unwraps), stored under its own name",
        &key(&f),
        json!({ "name": b.key_file.0 }),
    );

    // Dictionaries (§16) and payloads compressed with one (§6, flag 2).
    let (dname, dsealed, dplain) = &b.dict;
    let text = b"{\"type\":\"message\",\"turn\":3,\"role\":\"user\",\"content\":\"Turn 3 about bread baking: please keep this in mind.\"}\n";
    let tid = k.blob_id(text);
    let mut other = dplain.clone();
    let zid = u32::from_le_bytes(other[4..8].try_into().unwrap());
    other[4..8].copy_from_slice(&(zid ^ 0x5a5a).to_le_bytes());
    let with_dict = |d: &[u8]| {
        [&[2u8][..], &zstd::bulk::Compressor::with_dictionary(3, d).unwrap().compress(text).unwrap()].concat()
    };
    let blob_aad: &[&[u8]] = &[AAD_BLOB, &[0], &tid.0];
    o.put(
        "blob-dictionary-missing",
        "blob",
        "dictionary",
        "flag 2, compressed with a dictionary whose ID is not that of the repository's",
        &seal(dk, blob_aad, &with_dict(&other)),
        ctx(0, &tid, text.len()),
    );
    let no_id = [&[2u8][..], &zstd::bulk::compress(text, 3).unwrap()].concat();
    o.put(
        "blob-dictionary-frame-names-none",
        "blob",
        "encoding",
        "flag 2 with a zstd frame compressed without a dictionary (no Dictionary_ID)",
        &seal(dk, blob_aad, &no_id),
        ctx(0, &tid, text.len()),
    );
    let good = with_dict(dplain);
    o.put(
        "blob-dictionary-declared-length-oversized",
        "blob",
        "length",
        "flag 2: the frame declares more than the index's raw_length",
        &seal(dk, blob_aad, &good),
        ctx(0, &tid, text.len() - 1),
    );
    let mut x = dplain.clone();
    x[0] ^= 1;
    o.named(
        "dict-bad-magic",
        "dict",
        "encoding",
        "the dictionary's magic number changed",
        &seal(dk, &[AAD_DICT], &raw(&x)),
    );
    let mut x = dplain.clone();
    x[4..8].copy_from_slice(&[0; 4]);
    o.named("dict-id-zero", "dict", "encoding", "Dictionary_ID 0", &seal(dk, &[AAD_DICT], &raw(&x)));
    o.named(
        "dict-wrong-aad",
        "dict",
        "authentication",
        "sealed with the index's associated data",
        &seal(dk, &[AAD_INDEX], &raw(dplain)),
    );
    o.put(
        "dict-name-mismatch",
        "dict",
        "name",
        "the repository's dictionary stored under another name",
        dsealed,
        json!({ "name": ObjectId::of_bytes(dname.as_bytes()).to_hex() }),
    );
    let iplain = postcard::to_allocvec(&idx).unwrap();
    let x =
        [&[2u8][..], &zstd::bulk::Compressor::with_dictionary(3, dplain).unwrap().compress(&iplain).unwrap()].concat();
    o.named(
        "index-dictionary-flag",
        "index",
        "encoding",
        "an index file compressed with the dictionary (flag 2)",
        &seal(dk, &[AAD_INDEX], &x),
    );

    let count = o.vectors.len();
    let manifest = json!({
        "about": "Objects a reader must refuse, one per file; the keys and passphrase are those of ../vectors.json. \
                  `object` says what the file holds (pack, blob, tree plaintext, index, snapshot, config, key); \
                  `name` is the name it is stored under; a blob's `type`, `id` and `raw_length` are what an index \
                  would say of it; a key file's `name`, when given, is the name it is stored under in the vector \
                  repository, in place of the good key file; `expect` is the outcome (one of `kinds`). Every reader \
                  must refuse every vector. Regenerate with `cargo run -p clawback-engine --example make_vectors` \
                  (`-- --invalid-only` keeps ../repo and rewrites this folder alone).",
        "kinds": KINDS.iter().map(|(k, d)| (k.to_string(), json!(d))).collect::<serde_json::Map<_, _>>(),
        "vectors": o.vectors,
    });
    std::fs::write(dir.join("manifest.json"), serde_json::to_string_pretty(&manifest).unwrap() + "\n").unwrap();
    count
}
