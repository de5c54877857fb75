//! Keys and authenticated encryption. A random 32-byte master key opens everything; key files wrap it
//! under an Argon2id-derived key. Subkeys come from the master key by HKDF-SHA256 with distinct labels.
//! Every stored object is `nonce(12) ‖ ciphertext ‖ tag(16)` of AES-256-GCM-SIV with associated data
//! that binds it to its role (and, for blobs, to its type and id).

use crate::error::{Error, Result};
use crate::format::canonical;
use crate::format::id::{BlobId, DataId, ObjectId, TreeId};
use aes_gcm_siv::aead::{AeadInOut, KeyInit};
use aes_gcm_siv::{Aes256GcmSiv, Nonce, Tag};
use rand::RngCore;
use serde::{Deserialize, Serialize};

pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;
/// Bytes an encrypted object adds to its plaintext.
pub const OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// HKDF salt and labels; part of the format (see format-spec/README.md, "Keys").
pub const HKDF_SALT: &[u8] = b"clawback/v1";
pub const LABEL_CHUNK_ID: &[u8] = b"clawback/v1/chunk-id-key";
pub const LABEL_DATA: &[u8] = b"clawback/v1/data-key";
pub const LABEL_CHUNKER_SEED: &[u8] = b"clawback/v1/chunker-seed";

/// Associated-data prefixes, one per kind of encrypted object.
pub const AAD_CONFIG: &[u8] = b"clawback/v1/config";
pub const AAD_KEY: &[u8] = b"clawback/v1/key";
pub const AAD_PACK_HEADER: &[u8] = b"clawback/v1/pack-header";
pub const AAD_INDEX: &[u8] = b"clawback/v1/index";
pub const AAD_SNAPSHOT: &[u8] = b"clawback/v1/snapshot";
pub const AAD_BLOB: &[u8] = b"clawback/v1/blob";

/// The repository's master key, from which every subkey is derived.
#[derive(Clone)]
pub struct MasterKey(pub [u8; 32]);

impl MasterKey {
    pub fn random() -> Self {
        let mut k = [0u8; 32];
        rand::rng().fill_bytes(&mut k);
        MasterKey(k)
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<secret>)")
    }
}

/// The subkeys a repository uses, derived once when it is opened.
#[derive(Clone)]
pub struct Keys {
    chunk_id_key: [u8; 32],
    cipher: Aes256GcmSiv,
    /// Seed XORed into FastCDC's gear table so chunk boundaries do not reveal content.
    pub chunker_seed: u64,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(<secret>)")
    }
}

fn hkdf32(master: &MasterKey, label: &[u8]) -> [u8; 32] {
    let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(HKDF_SALT), &master.0);
    let mut out = [0u8; 32];
    hk.expand(label, &mut out).expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

/// The raw subkeys, as the format spec defines them (exposed for test vectors).
pub struct Subkeys {
    pub chunk_id_key: [u8; 32],
    pub data_key: [u8; 32],
    pub chunker_seed: u64,
}

impl Subkeys {
    pub fn derive(master: &MasterKey) -> Self {
        let seed_bytes = hkdf32(master, LABEL_CHUNKER_SEED);
        Subkeys {
            chunk_id_key: hkdf32(master, LABEL_CHUNK_ID),
            data_key: hkdf32(master, LABEL_DATA),
            chunker_seed: u64::from_le_bytes(seed_bytes[..8].try_into().unwrap()),
        }
    }
}

impl Keys {
    pub fn derive(master: &MasterKey) -> Self {
        let s = Subkeys::derive(master);
        Keys {
            chunk_id_key: s.chunk_id_key,
            cipher: Aes256GcmSiv::new(&s.data_key.into()),
            chunker_seed: s.chunker_seed,
        }
    }

    /// The id of a blob: keyed BLAKE3 of its plaintext.
    pub fn blob_id(&self, plaintext: &[u8]) -> BlobId {
        BlobId(*blake3::keyed_hash(&self.chunk_id_key, plaintext).as_bytes())
    }

    /// The id of a tree blob (an encoded [`crate::format::tree::Tree`]).
    pub fn tree_id(&self, plaintext: &[u8]) -> TreeId {
        TreeId(self.blob_id(plaintext).0)
    }

    /// The id of a data blob (a chunk of file content).
    pub fn data_id(&self, plaintext: &[u8]) -> DataId {
        DataId(self.blob_id(plaintext).0)
    }

    /// Encrypts `buf[NONCE_LEN..]` in place, filling in a random nonce at `buf[..NONCE_LEN]` and
    /// appending the tag. The caller reserves the nonce space, which avoids copying the payload.
    pub fn seal_in_place(&self, aad: &[&[u8]], buf: &mut Vec<u8>) {
        seal_with(&self.cipher, aad, buf)
    }

    /// Encrypts `plaintext` into a new `nonce ‖ ciphertext ‖ tag` buffer.
    pub fn seal(&self, aad: &[&[u8]], plaintext: &[u8]) -> Vec<u8> {
        let mut buf = Vec::with_capacity(plaintext.len() + OVERHEAD);
        buf.resize(NONCE_LEN, 0);
        buf.extend_from_slice(plaintext);
        self.seal_in_place(aad, &mut buf);
        buf
    }

    /// Decrypts and authenticates `nonce ‖ ciphertext ‖ tag`.
    pub fn open(&self, aad: &[&[u8]], sealed: &[u8]) -> Option<Vec<u8>> {
        open_with(&self.cipher, aad, sealed)
    }
}

fn join_aad(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn seal_with(cipher: &Aes256GcmSiv, aad: &[&[u8]], buf: &mut Vec<u8>) {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    buf[..NONCE_LEN].copy_from_slice(&nonce);
    let aad = join_aad(aad);
    let tag = cipher
        .encrypt_inout_detached(&Nonce::from(nonce), &aad, (&mut buf[NONCE_LEN..]).into())
        .expect("AES-GCM-SIV encryption cannot fail for payloads under 64 GiB");
    buf.extend_from_slice(&tag);
}

fn open_with(cipher: &Aes256GcmSiv, aad: &[&[u8]], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < OVERHEAD {
        return None;
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
    let mut out = ct.to_vec();
    let aad = join_aad(aad);
    let (nonce, tag) = (Nonce::try_from(nonce).ok()?, Tag::try_from(tag).ok()?);
    cipher.decrypt_inout_detached(&nonce, &aad, (&mut out[..]).into(), &tag).ok()?;
    Some(out)
}

/// Argon2id cost parameters, stored in each key file.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Default for KdfParams {
    /// 32 MiB (restic's scrypt takes as much) and 6 passes, about 0.2 s on a small server. The
    /// derivation's memory is the floor of every command's peak memory, so it is kept at what
    /// restic asks for; the passes keep a guess as slow as 64 MiB and 3 passes did.
    fn default() -> Self {
        KdfParams { m_cost: 32 * 1024, t_cost: 6, p_cost: 1 }
    }
}

/// Upper bounds on what a key file may ask for, so a hostile one cannot exhaust memory or time
/// (key files are plaintext: anyone who can write to `keys/` can plant one). 1 GiB, in KiB.
pub const MAX_M_COST: u32 = 1024 * 1024;
const MAX_T_COST: u32 = 100;
const MAX_P_COST: u32 = 64;

pub fn derive_wrapping_key(passphrase: &[u8], salt: &[u8], p: &KdfParams) -> Result<[u8; 32]> {
    if p.m_cost > MAX_M_COST || p.t_cost > MAX_T_COST || p.p_cost > MAX_P_COST || p.t_cost == 0 {
        return Err(Error::corrupt("key file", "-", "Argon2 parameters out of range"));
    }
    let params = argon2::Params::new(p.m_cost, p.t_cost, p.p_cost, Some(32))
        .map_err(|e| Error::corrupt("key file", "-", format!("Argon2 parameters: {e}")))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = [0u8; 32];
    a.hash_password_into(passphrase, salt, &mut out)
        .map_err(|e| Error::corrupt("key file", "-", format!("Argon2: {e}")))?;
    Ok(out)
}

/// A key file (`keys/<id>`): plaintext JSON holding the Argon2id parameters and salt, and the master
/// key sealed under the key they derive from the passphrase.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyFile {
    pub version: u32,
    pub kdf: String,
    #[serde(flatten)]
    pub params: KdfParams,
    /// Base64 (standard, padded) of the 16-byte salt.
    pub salt: String,
    /// Base64 of `nonce ‖ AES-256-GCM-SIV(master key) ‖ tag`, associated data `clawback/v1/key`.
    pub data: String,
    pub created: String,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub username: String,
}

impl KeyFile {
    pub fn create(master: &MasterKey, passphrase: &[u8], params: KdfParams, host: &str, user: &str) -> Result<Self> {
        use base64::Engine;
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let wk = derive_wrapping_key(passphrase, &salt, &params)?;
        let cipher = Aes256GcmSiv::new(&wk.into());
        let mut buf = vec![0u8; NONCE_LEN];
        buf.extend_from_slice(&master.0);
        seal_with(&cipher, &[AAD_KEY], &mut buf);
        let b64 = base64::engine::general_purpose::STANDARD;
        Ok(KeyFile {
            version: 1,
            kdf: "argon2id".into(),
            params,
            salt: b64.encode(salt),
            data: b64.encode(&buf),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            hostname: host.into(),
            username: user.into(),
        })
    }

    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let kf: KeyFile = canonical::json(bytes).map_err(|e| Error::corrupt("key file", "-", e))?;
        if kf.version != 1 || kf.kdf != "argon2id" {
            return Err(Error::corrupt("key file", "-", "unsupported version or KDF"));
        }
        Ok(kf)
    }

    /// Whether `bytes`, stored as `keys/<name>`, hash to their name (format-spec §1). A key file
    /// that does not is damaged: a reader never uses it.
    pub fn is_named(name: &str, bytes: &[u8]) -> bool {
        ObjectId::of_bytes(bytes).to_hex() == name
    }

    /// For a key file whose bytes do not hash to its name, which no reader uses: the error naming
    /// it when `passphrase` would open it (so that the damage is reported, not taken for a wrong
    /// passphrase), `Ok(())` when it would not.
    pub fn refuse_misnamed(name: &str, bytes: &[u8], passphrase: &[u8]) -> Result<()> {
        if Self::parse(bytes).and_then(|kf| kf.open(passphrase)).is_ok_and(|m| m.is_some()) {
            return Err(Error::corrupt(
                "key file",
                name,
                "content does not match its name (the file was changed): restore it from a copy",
            ));
        }
        Ok(())
    }

    /// Unwraps the master key; `None` when the passphrase is wrong.
    pub fn open(&self, passphrase: &[u8]) -> Result<Option<MasterKey>> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let salt = b64.decode(&self.salt).map_err(|e| Error::corrupt("key file", "-", e))?;
        let data = b64.decode(&self.data).map_err(|e| Error::corrupt("key file", "-", e))?;
        let wk = derive_wrapping_key(passphrase, &salt, &self.params)?;
        let cipher = Aes256GcmSiv::new(&wk.into());
        match open_with(&cipher, &[AAD_KEY], &data) {
            Some(pt) if pt.len() == 32 => Ok(Some(MasterKey(pt.try_into().unwrap()))),
            Some(_) => Err(Error::corrupt("key file", "-", "wrapped key has the wrong length")),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> KdfParams {
        KdfParams { m_cost: 64, t_cost: 1, p_cost: 1 }
    }

    #[test]
    fn seal_open_round_trip_and_aad_binding() {
        let keys = Keys::derive(&MasterKey([1u8; 32]));
        let sealed = keys.seal(&[AAD_INDEX], b"hello");
        assert_eq!(sealed.len(), 5 + OVERHEAD);
        assert_eq!(keys.open(&[AAD_INDEX], &sealed).unwrap(), b"hello");
        assert!(keys.open(&[AAD_SNAPSHOT], &sealed).is_none(), "wrong role must not decrypt");
        let mut bad = sealed.clone();
        bad[NONCE_LEN] ^= 1;
        assert!(keys.open(&[AAD_INDEX], &bad).is_none());
        assert!(keys.open(&[AAD_INDEX], &sealed[..10]).is_none());
    }

    #[test]
    fn subkeys_differ_and_are_deterministic() {
        let a = Keys::derive(&MasterKey([1u8; 32]));
        let b = Keys::derive(&MasterKey([1u8; 32]));
        let c = Keys::derive(&MasterKey([2u8; 32]));
        assert_eq!(a.blob_id(b"x"), b.blob_id(b"x"));
        assert_ne!(a.blob_id(b"x"), c.blob_id(b"x"));
        assert_eq!(a.chunker_seed, b.chunker_seed);
        assert_ne!(a.chunker_seed, c.chunker_seed);
    }

    #[test]
    fn key_file_wraps_and_rejects_wrong_passphrase() {
        let m = MasterKey::random();
        let kf = KeyFile::create(&m, b"secret", fast(), "h", "u").unwrap();
        let json = serde_json::to_vec(&kf).unwrap();
        let kf2 = KeyFile::parse(&json).unwrap();
        assert_eq!(kf2.open(b"secret").unwrap().unwrap().0, m.0);
        assert!(kf2.open(b"wrong").unwrap().is_none());
    }

    #[test]
    fn key_files_are_named_by_their_hash_and_have_each_key_once() {
        let m = MasterKey([6; 32]);
        let kf = KeyFile::create(&m, b"pw", fast(), "h", "u").unwrap();
        let json = serde_json::to_vec_pretty(&kf).unwrap();
        let name = ObjectId::of_bytes(&json).to_hex();
        assert!(KeyFile::is_named(&name, &json));
        assert!(!KeyFile::is_named(&name.to_uppercase(), &json));
        let mut changed = json.clone();
        changed.push(b'\n');
        assert!(!KeyFile::is_named(&name, &changed));
        // Misnamed: an error when the passphrase opens it, nothing when it does not.
        let e = KeyFile::refuse_misnamed(&name, &changed, b"pw").unwrap_err().to_string();
        assert!(e.contains("does not match its name"), "{e}");
        assert!(KeyFile::refuse_misnamed(&name, &changed, b"other").is_ok());
        assert!(KeyFile::refuse_misnamed(&name, b"not json", b"pw").is_ok());

        let twice = String::from_utf8(json).unwrap().replacen('{', "{\"note\": 1, \"note\": 2,", 1);
        assert!(KeyFile::parse(twice.as_bytes()).unwrap_err().to_string().contains("twice"));
    }

    #[test]
    fn hostile_kdf_parameters_are_refused() {
        let p = KdfParams { m_cost: u32::MAX, t_cost: 1, p_cost: 1 };
        assert!(derive_wrapping_key(b"x", b"saltsaltsaltsalt", &p).is_err());
    }
}
