//! An independent reader of the repository format, written from `format-spec/README.md` alone. It
//! shares no code with the engine (a test in `drift.rs` checks that this file never names the
//! engine's crate) and uses only the primitives the spec names: BLAKE3, HKDF-SHA256, Argon2id,
//! AES-256-GCM-SIV, zstd, its own postcard and base64 readers, and a JSON parser.

use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::io::Read;

/// Why a reader refuses an object: the outcome kinds of `vectors/invalid/manifest.json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Name,
    Authentication,
    Length,
    Version,
    Encoding,
    UnsafeName,
    Order,
    KindMismatch,
    Layout,
    Id,
    Range,
    Dictionary,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Name => "name",
            Outcome::Authentication => "authentication",
            Outcome::Length => "length",
            Outcome::Version => "version",
            Outcome::Encoding => "encoding",
            Outcome::UnsafeName => "unsafe-name",
            Outcome::Order => "order",
            Outcome::KindMismatch => "kind-mismatch",
            Outcome::Dictionary => "dictionary",
            Outcome::Layout => "layout",
            Outcome::Id => "id",
            Outcome::Range => "range",
        }
    }
}

#[derive(Debug)]
pub struct Refused {
    pub kind: Outcome,
    pub why: String,
}

pub type R<T> = Result<T, Refused>;

fn refuse<T>(kind: Outcome, why: impl Into<String>) -> R<T> {
    Err(Refused { kind, why: why.into() })
}

// §1: objects are named by the hex BLAKE3 of their bytes.
pub fn object_name(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

pub fn check_name(name: &str, bytes: &[u8]) -> R<()> {
    if object_name(bytes) != name {
        return refuse(Outcome::Name, format!("bytes do not hash to {name}"));
    }
    Ok(())
}

// §2: subkeys.
pub struct Subkeys {
    pub chunk_id_key: [u8; 32],
    pub data_key: [u8; 32],
    pub chunker_seed: u64,
}

pub fn subkeys(master: &[u8; 32]) -> Subkeys {
    let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"clawback/v1"), master);
    let expand = |label: &[u8]| {
        let mut out = [0u8; 32];
        hk.expand(label, &mut out).unwrap();
        out
    };
    let seed = expand(b"clawback/v1/chunker-seed");
    Subkeys {
        chunk_id_key: expand(b"clawback/v1/chunk-id-key"),
        data_key: expand(b"clawback/v1/data-key"),
        chunker_seed: u64::from_le_bytes(seed[..8].try_into().unwrap()),
    }
}

pub fn blob_id(k: &Subkeys, plain: &[u8]) -> [u8; 32] {
    *blake3::keyed_hash(&k.chunk_id_key, plain).as_bytes()
}

// §3: key files.
pub fn unwrap_key(file: &[u8], passphrase: &[u8]) -> R<[u8; 32]> {
    let v = json(file)?;
    version_one(&v)?;
    if v["kdf"] != "argon2id" {
        return refuse(Outcome::Version, format!("kdf {}", v["kdf"]));
    }
    let num = |k: &str| v[k].as_u64().map_or_else(|| refuse(Outcome::Encoding, format!("{k} is not a number")), Ok);
    let (m, t, p) = (num("m_cost")?, num("t_cost")?, num("p_cost")?);
    if m > 1 << 20 || t == 0 || t > 100 || p == 0 || p > 64 {
        return refuse(Outcome::Range, format!("Argon2id m={m} t={t} p={p}"));
    }
    let salt = base64(str_of(&v, "salt")?)?;
    let data = base64(str_of(&v, "data")?)?;
    let params = argon2::Params::new(m as u32, t as u32, p as u32, Some(32))
        .or_else(|e| refuse(Outcome::Range, format!("Argon2id: {e}")))?;
    let mut wk = [0u8; 32];
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(passphrase, &salt, &mut wk)
        .or_else(|e| refuse(Outcome::Range, format!("Argon2id: {e}")))?;
    let master = open(&wk, b"clawback/v1/key", &data)?;
    master.try_into().or_else(|m: Vec<u8>| refuse(Outcome::Length, format!("wrapped key of {} bytes", m.len())))
}

/// Standard base64 with padding, canonical: length a multiple of 4, unused bits zero.
pub fn base64(s: &str) -> R<Vec<u8>> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return refuse(Outcome::Encoding, "base64 length not a multiple of 4");
    }
    let pad = b.iter().rev().take_while(|&&c| c == b'=').count();
    if pad > 2 {
        return refuse(Outcome::Encoding, "base64 padding");
    }
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for &c in &b[..b.len() - pad] {
        let Some(x) = A.iter().position(|&a| a == c) else {
            return refuse(Outcome::Encoding, format!("base64 symbol {:?}", c as char));
        };
        bits = bits << 6 | x as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    if bits & ((1 << n) - 1) != 0 {
        return refuse(Outcome::Encoding, "base64 with non-zero unused bits (not canonical)");
    }
    Ok(out)
}

// §5: sealing.
pub fn open(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> R<Vec<u8>> {
    if sealed.len() < 28 {
        return refuse(Outcome::Authentication, "shorter than nonce and tag");
    }
    Aes256GcmSiv::new_from_slice(key)
        .unwrap()
        .decrypt(&Nonce::try_from(&sealed[..12]).expect("a 12-byte nonce"), Payload { msg: &sealed[12..], aad })
        .or_else(|_| refuse(Outcome::Authentication, "AES-256-GCM-SIV refuses it"))
}

/// Opens a sealed object and decodes its payload, at most `limit` bytes of plaintext (no
/// dictionaries: only blobs may use one).
pub fn open_object(key: &[u8; 32], aad: &[u8], sealed: &[u8], limit: u64) -> R<Vec<u8>> {
    payload(&open(key, aad, sealed)?, limit, None).map(|(p, _)| p)
}

/// A repository's dictionaries (§16): (zstd Dictionary_ID, dictionary bytes).
pub type Dicts = [(u32, Vec<u8>)];

// §6: the payload. Returns the plaintext and its flag. `dicts`: `None` for objects other than
// blobs, which may not use flag 2.
pub fn payload(p: &[u8], limit: u64, dicts: Option<&Dicts>) -> R<(Vec<u8>, u8)> {
    match p.first() {
        Some(2) => {
            let Some(dicts) = dicts else {
                return refuse(Outcome::Encoding, "flag 2 outside a blob");
            };
            let frame = &p[1..];
            match zstd::zstd_safe::find_frame_compressed_size(frame) {
                Ok(size) if size == frame.len() => {}
                _ => return refuse(Outcome::Encoding, "not exactly one zstd frame"),
            }
            let Ok(Some(n)) = zstd::zstd_safe::get_frame_content_size(frame) else {
                return refuse(Outcome::Encoding, "the frame does not declare its content size");
            };
            if n > limit {
                return refuse(Outcome::Length, format!("declares {n} bytes, limit {limit}"));
            }
            let Some(id) = zstd::zstd_safe::get_dict_id_from_frame(frame) else {
                return refuse(Outcome::Encoding, "flag 2 with a frame that names no dictionary");
            };
            let Some((_, dict)) = dicts.iter().find(|(i, _)| *i == id.get()) else {
                return refuse(Outcome::Dictionary, format!("dictionary {id} is not in the repository"));
            };
            let mut out = Vec::with_capacity(n as usize);
            zstd::stream::read::Decoder::with_dictionary(frame, dict)
                .and_then(|d| d.take(n + 1).read_to_end(&mut out))
                .or_else(|e| refuse(Outcome::Encoding, format!("zstd: {e}")))?;
            if out.len() as u64 != n {
                return refuse(Outcome::Length, format!("declares {n} bytes, holds {}", out.len()));
            }
            Ok((out, 2))
        }
        Some(0) => {
            if p.len() as u64 - 1 > limit {
                return refuse(Outcome::Length, format!("{} bytes, limit {limit}", p.len() - 1));
            }
            Ok((p[1..].to_vec(), 0))
        }
        Some(1) => {
            if p.len() < 9 {
                return refuse(Outcome::Encoding, "compressed payload without its length");
            }
            let n = u64::from_le_bytes(p[1..9].try_into().unwrap());
            if n > limit {
                return refuse(Outcome::Length, format!("declares {n} bytes, limit {limit}"));
            }
            let frame = &p[9..];
            match zstd::zstd_safe::find_frame_compressed_size(frame) {
                Ok(size) if size == frame.len() => {}
                _ => return refuse(Outcome::Encoding, "not exactly one zstd frame"),
            }
            let mut out = Vec::with_capacity(n as usize);
            zstd::stream::read::Decoder::new(frame)
                .and_then(|d| d.take(n + 1).read_to_end(&mut out))
                .or_else(|e| refuse(Outcome::Encoding, format!("zstd: {e}")))?;
            if out.len() as u64 != n {
                return refuse(Outcome::Length, format!("declares {n} bytes, holds {}", out.len()));
            }
            Ok((out, 1))
        }
        Some(f) => refuse(Outcome::Encoding, format!("payload flag {f}")),
        None => refuse(Outcome::Encoding, "empty payload"),
    }
}

// §9: postcard, canonical form only.
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn new(b: &'a [u8]) -> Self {
        Cursor { b, at: 0 }
    }

    fn u8(&mut self) -> R<u8> {
        let Some(&x) = self.b.get(self.at) else { return refuse(Outcome::Encoding, "truncated") };
        self.at += 1;
        Ok(x)
    }

    /// Unsigned LEB128 of at most `max_bytes` bytes: the shortest form, and no larger than `max`.
    fn varint(&mut self, max_bytes: usize, max: u64) -> R<u64> {
        let mut v: u128 = 0;
        for i in 0..max_bytes {
            let b = self.u8()?;
            v |= ((b & 0x7f) as u128) << (7 * i);
            if b & 0x80 == 0 {
                if i > 0 && b == 0 {
                    return refuse(Outcome::Encoding, "varint not in its shortest form");
                }
                if v > max as u128 {
                    return refuse(Outcome::Encoding, "varint larger than its type");
                }
                return Ok(v as u64);
            }
        }
        refuse(Outcome::Encoding, "varint longer than its type allows")
    }

    fn u32(&mut self) -> R<u32> {
        self.varint(5, u32::MAX as u64).map(|v| v as u32)
    }

    fn u64(&mut self) -> R<u64> {
        self.varint(10, u64::MAX)
    }

    fn i64(&mut self) -> R<i64> {
        let z = self.u64()?;
        Ok((z >> 1) as i64 ^ -((z & 1) as i64))
    }

    /// A length: no more items than bytes left (each takes at least one).
    fn len(&mut self) -> R<usize> {
        let n = self.u64()?;
        if n > (self.b.len() - self.at) as u64 {
            return refuse(Outcome::Encoding, "length beyond the bytes left");
        }
        Ok(n as usize)
    }

    fn bytes(&mut self) -> R<Vec<u8>> {
        let n = self.len()?;
        self.at += n;
        Ok(self.b[self.at - n..self.at].to_vec())
    }

    fn id(&mut self) -> R<[u8; 32]> {
        let Some(s) = self.b.get(self.at..self.at + 32) else { return refuse(Outcome::Encoding, "truncated id") };
        self.at += 32;
        Ok(s.try_into().unwrap())
    }

    fn variant(&mut self, count: u32) -> R<u8> {
        let v = self.u32()?;
        if v >= count {
            return refuse(Outcome::Encoding, format!("enum variant {v} of {count}"));
        }
        Ok(v as u8)
    }

    fn option_id(&mut self) -> R<Option<[u8; 32]>> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.id().map(Some),
            t => refuse(Outcome::Encoding, format!("option tag {t}")),
        }
    }

    fn vec<T>(&mut self, mut item: impl FnMut(&mut Self) -> R<T>) -> R<Vec<T>> {
        let n = self.len()?;
        (0..n).map(|_| item(self)).collect()
    }

    fn version(&mut self) -> R<()> {
        match self.u8()? {
            1 => Ok(()),
            v => refuse(Outcome::Version, format!("version {v}")),
        }
    }

    fn finish(&self) -> R<()> {
        if self.at != self.b.len() {
            return refuse(Outcome::Encoding, format!("{} bytes after the value", self.b.len() - self.at));
        }
        Ok(())
    }
}

// §7: packs and blobs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub ty: u8,
    pub id: [u8; 32],
    pub offset: u32,
    pub length: u32,
    pub raw_length: u32,
}

fn entry(c: &mut Cursor<'_>) -> R<Entry> {
    Ok(Entry { ty: c.variant(2)?, id: c.id()?, offset: c.u32()?, length: c.u32()?, raw_length: c.u32()? })
}

pub struct Pack {
    pub header_length: u32,
    pub entries: Vec<Entry>,
}

/// The largest pack a reader accepts (§7).
pub const MAX_PACK: u64 = 2 << 30;

pub fn pack(k: &Subkeys, name: &str, bytes: &[u8]) -> R<Pack> {
    if bytes.len() as u64 > MAX_PACK {
        return refuse(Outcome::Length, "larger than 2 GiB");
    }
    check_name(name, bytes)?;
    if bytes.len() < 4 {
        return refuse(Outcome::Length, "shorter than the trailer");
    }
    let header_length = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().unwrap());
    if header_length as u64 + 4 > bytes.len() as u64 {
        return refuse(Outcome::Length, "header longer than the pack");
    }
    let start = bytes.len() - 4 - header_length as usize;
    let plain = open_object(&k.data_key, b"clawback/v1/pack-header", &bytes[start..bytes.len() - 4], 64 << 20)?;
    let mut c = Cursor::new(&plain);
    c.version()?;
    let entries = c.vec(entry)?;
    c.finish()?;
    let mut expect = 0u64;
    for e in &entries {
        if e.offset as u64 != expect {
            return refuse(Outcome::Layout, format!("entry at {} where {expect} was due", e.offset));
        }
        expect += e.length as u64;
    }
    if expect != start as u64 {
        return refuse(Outcome::Layout, format!("entries cover {expect} of {start} bytes"));
    }
    Ok(Pack { header_length, entries })
}

/// Opens a stored blob as an index describes it, with the repository's dictionaries; returns the
/// plaintext and its payload flag.
pub fn blob(k: &Subkeys, dicts: &Dicts, ty: u8, id: &[u8; 32], raw_length: u64, stored: &[u8]) -> R<(Vec<u8>, u8)> {
    let aad = [&b"clawback/v1/blob"[..], &[ty], id].concat();
    let (plain, compressed) = payload(&open(&k.data_key, &aad, stored)?, raw_length.min(256 << 20), Some(dicts))?;
    if plain.len() as u64 != raw_length {
        return refuse(Outcome::Length, format!("{} bytes, the index says {raw_length}", plain.len()));
    }
    if blob_id(k, &plain) != *id {
        return refuse(Outcome::Id, "plaintext does not hash to the blob's id");
    }
    Ok((plain, compressed))
}

// §8: index files.
pub struct IndexFile {
    pub supersedes: Vec<[u8; 32]>,
    pub packs: Vec<([u8; 32], u64, Vec<Entry>)>,
}

pub fn index(k: &Subkeys, name: &str, bytes: &[u8]) -> R<IndexFile> {
    check_name(name, bytes)?;
    let plain = open_object(&k.data_key, b"clawback/v1/index", bytes, 1 << 30)?;
    let mut c = Cursor::new(&plain);
    c.version()?;
    let supersedes = c.vec(Cursor::id)?;
    let packs = c.vec(|c| Ok((c.id()?, c.u64()?, c.vec(entry)?)))?;
    c.finish()?;
    if let Some((_, size, _)) = packs.iter().find(|p| p.1 > MAX_PACK) {
        return refuse(Outcome::Length, format!("a pack of {size} bytes"));
    }
    Ok(IndexFile { supersedes, packs })
}

// §10: trees.
#[derive(Debug)]
pub struct Node {
    pub name: Vec<u8>,
    pub kind: u8,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub size: u64,
    pub content: Vec<[u8; 32]>,
    pub subtree: Option<[u8; 32]>,
    pub target: Vec<u8>,
}

pub const DIR: u8 = 1;

pub fn tree(plain: &[u8]) -> R<Vec<Node>> {
    let mut c = Cursor::new(plain);
    c.version()?;
    let nodes = c.vec(|c| {
        Ok(Node {
            name: c.bytes()?,
            kind: c.variant(3)?,
            mode: c.u32()?,
            uid: c.u32()?,
            gid: c.u32()?,
            mtime_ns: c.i64()?,
            ctime_ns: c.i64()?,
            dev: c.u64()?,
            ino: c.u64()?,
            nlink: c.u64()?,
            size: c.u64()?,
            content: c.vec(Cursor::id)?,
            subtree: c.option_id()?,
            target: c.bytes()?,
        })
    })?;
    c.finish()?;
    for (i, n) in nodes.iter().enumerate() {
        let name = &n.name;
        if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0) {
            return refuse(Outcome::UnsafeName, format!("entry name {:?}", String::from_utf8_lossy(name)));
        }
        if i > 0 && nodes[i - 1].name >= *name {
            return refuse(Outcome::Order, "entries not in strictly increasing byte order");
        }
        if (n.kind == DIR) != n.subtree.is_some() {
            return refuse(Outcome::KindMismatch, "a subtree exactly when the entry is a directory");
        }
    }
    Ok(nodes)
}

// §4, §11: JSON objects.

/// A JSON document parsed strictly: UTF-8, one value, no key twice in an object.
pub fn json(bytes: &[u8]) -> R<Value> {
    let v = serde_json::from_slice::<Strict>(bytes).or_else(|e| refuse(Outcome::Encoding, format!("JSON: {e}")))?.0;
    if !v.is_object() {
        return refuse(Outcome::Encoding, "not a JSON object");
    }
    Ok(v)
}

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(n.into())
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(n.into())
    }
    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = a.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some((k, Strict(v))) = a.next_entry::<String, Strict>()? {
            if out.insert(k.clone(), v).is_some() {
                return Err(serde::de::Error::custom(format!("key {k:?} twice")));
            }
        }
        Ok(Value::Object(out))
    }
}

fn version_one(v: &Value) -> R<()> {
    match v.get("version").and_then(Value::as_u64) {
        Some(1) => Ok(()),
        Some(n) => refuse(Outcome::Version, format!("version {n}")),
        None => refuse(Outcome::Encoding, "no version number"),
    }
}

fn str_of<'a>(v: &'a Value, k: &str) -> R<&'a str> {
    v[k].as_str().map_or_else(|| refuse(Outcome::Encoding, format!("{k} is not a string")), Ok)
}

fn is_hex64(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The config's `id`: 64 lowercase hex digits (§4).
fn is_lowercase_hex64(v: &Value) -> bool {
    is_hex64(v) && v.as_str().is_some_and(|s| !s.bytes().any(|b| b.is_ascii_uppercase()))
}

/// An RFC 3339 `date-time` (§5.6): `YYYY-MM-DDTHH:MM:SS`, an optional fraction, then `Z` or
/// `+HH:MM`/`-HH:MM`; `T` and `Z` may be lowercase; the day exists in its month; second 60 is a
/// leap second.
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let num = |at: usize, n: usize| -> Option<u32> {
        let d = b.get(at..at + n)?;
        d.iter().all(u8::is_ascii_digit).then(|| d.iter().fold(0, |v, &c| v * 10 + (c - b'0') as u32))
    };
    let at = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(sec)) =
        (num(0, 4), num(5, 2), num(8, 2), num(11, 2), num(14, 2), num(17, 2))
    else {
        return false;
    };
    if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt") && at(13, b":") && at(16, b":")) {
        return false;
    }
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&mo) || d == 0 || d > days[mo as usize - 1] || h > 23 || mi > 59 || sec > 60 {
        return false;
    }
    let mut i = 19;
    if at(i, b".") {
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return false;
        }
        i += 1 + digits;
    }
    match b.get(i) {
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            at(i + 3, b":")
                && i + 6 == b.len()
                && num(i + 1, 2).is_some_and(|oh| oh <= 23)
                && num(i + 4, 2).is_some_and(|om| om <= 59)
        }
        _ => false,
    }
}

/// Checks the shape of `v[key]`; `required` false lets it be absent.
fn shape(v: &Value, key: &str, required: bool, ok: impl Fn(&Value) -> bool) -> R<()> {
    match v.get(key) {
        None if !required => Ok(()),
        Some(x) if ok(x) => Ok(()),
        _ => refuse(Outcome::Encoding, format!("key {key} missing or of the wrong type")),
    }
}

fn strings(x: &Value) -> bool {
    x.as_array().is_some_and(|a| a.iter().all(Value::is_string))
}

fn issues(x: &Value) -> bool {
    x.as_array().is_some_and(|a| a.iter().all(|i| i["path"].is_string() && i["error"].is_string()))
}

fn opt_string(x: &Value) -> bool {
    x.is_null() || x.is_string()
}

pub fn config(k: &Subkeys, sealed: &[u8]) -> R<Value> {
    let v = json(&open_object(&k.data_key, b"clawback/v1/config", sealed, 1 << 20)?)?;
    match v.get("version").and_then(Value::as_u64) {
        Some(1 | 2) => {}
        Some(n) => return refuse(Outcome::Version, format!("repository version {n}")),
        None => return refuse(Outcome::Encoding, "no version number"),
    }
    if !is_lowercase_hex64(&v["id"]) {
        return refuse(Outcome::Range, "id is not 64 lowercase hex digits");
    }
    let c = &v["chunker"];
    let (Some(min), Some(avg), Some(max)) = (c["min"].as_u64(), c["avg"].as_u64(), c["max"].as_u64()) else {
        return refuse(Outcome::Encoding, "chunker min, avg, max");
    };
    let ok = (64..=1 << 20).contains(&min)
        && (256..=4 << 20).contains(&avg)
        && (1024..=16 << 20).contains(&max)
        && min < avg
        && avg < max
        && [min, avg, max].iter().all(|x| x % 2 == 0);
    if !ok {
        return refuse(Outcome::Range, format!("chunker {min}/{avg}/{max}"));
    }
    shape(&v, "pack_size", true, |x| x.is_u64())?;
    shape(&v, "compression", true, |x| x.is_i64())?;
    Ok(v)
}

pub fn snapshot(k: &Subkeys, name: &str, bytes: &[u8]) -> R<Value> {
    check_name(name, bytes)?;
    let v = json(&open_object(&k.data_key, b"clawback/v1/snapshot", bytes, 64 << 20)?)?;
    version_one(&v)?;
    for key in ["time", "hostname", "username", "program_version"] {
        shape(&v, key, true, Value::is_string)?;
    }
    if !is_rfc3339(str_of(&v, "time")?) {
        return refuse(Outcome::Encoding, format!("time {} is not RFC 3339", v["time"]));
    }
    shape(&v, "paths", true, strings)?;
    shape(&v, "tree", true, is_hex64)?;
    shape(&v, "parent", false, |x| x.is_null() || is_hex64(x))?;
    shape(&v, "original", false, |x| x.is_null() || is_hex64(x))?;
    shape(&v, "group", false, opt_string)?;
    shape(&v, "tags", false, strings)?;
    for key in ["errors", "skipped", "warnings", "changed"] {
        shape(&v, key, false, issues)?;
    }
    shape(&v, "summary", true, |s| {
        ["files_new", "files_changed", "files_unmodified", "dirs", "bytes_read", "bytes_added", "bytes_stored"]
            .iter()
            .all(|k| s[k].is_u64())
            && s["duration_s"].is_number()
            && ["total_files", "total_bytes"].iter().all(|k| s.get(k).is_none_or(Value::is_u64))
    })?;
    shape(&v, "openclaw", false, |o| {
        o.is_null()
            || o["state_dir"].is_string()
                && o.get("config_path").is_none_or(opt_string)
                && o.get("config_files").is_none_or(strings)
                && o.get("workspaces").is_none_or(strings)
                && o.get("agents").is_none_or(|a| {
                    a.as_array().is_some_and(|a| {
                        a.iter().all(|a| {
                            a["id"].is_string()
                                && a.get("default").is_none_or(Value::is_boolean)
                                && a["workspace"].is_string()
                                && a["agent_dir"].is_string()
                        })
                    })
                })
                && o.get("openclaw_version").is_none_or(opt_string)
                && o.get("openclaw_version_source")
                    .is_none_or(|s| s.is_null() || ["cli", "config", "archive"].iter().any(|x| s == x))
    })?;
    Ok(v)
}

// §16: dictionaries. Returns the zstd Dictionary_ID and the dictionary.
pub fn dict(k: &Subkeys, name: &str, bytes: &[u8]) -> R<(u32, Vec<u8>)> {
    check_name(name, bytes)?;
    let d = open_object(&k.data_key, b"clawback/v1/dict", bytes, 1 << 20)?;
    if d.len() < 8 || d[..4] != [0x37, 0xa4, 0x30, 0xec] {
        return refuse(Outcome::Encoding, "not a zstd dictionary (magic number)");
    }
    let id = u32::from_le_bytes(d[4..8].try_into().unwrap());
    if id == 0 {
        return refuse(Outcome::Encoding, "dictionary ID 0");
    }
    if zstd::zstd_safe::DDict::try_create(&d).and_then(|x| x.get_dict_id()).map(|i| i.get()) != Some(id) {
        return refuse(Outcome::Encoding, "zstd does not load it");
    }
    Ok((id, d))
}
