//! Key management: the key files under `keys/`, each wrapping the one master key under its own
//! passphrase. Adding a key never re-encrypts anything; removing one refuses to take away the key
//! in use or the last key, so a repository cannot be locked out by this command.

use crate::backend::{Backend, Kind, ObjectName};
use crate::error::{Error, Result};
use crate::format::crypto::KeyFile;
use crate::format::id::KeyId;
use crate::repo::{Repository, Secret};
use serde::Serialize;

/// One key file, as `key list` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct KeyInfo {
    pub id: String,
    pub short_id: String,
    pub hostname: String,
    pub username: String,
    pub created: String,
    /// Whether this is the key the current password opened.
    pub current: bool,
}

fn read_key(be: &dyn Backend, name: &ObjectName) -> Result<KeyFile> {
    let bytes = be.read(name).map_err(Error::backend_err("read", name))?;
    KeyFile::parse(&bytes).map_err(|e| Error::corrupt("key file", name, e))
}

/// Every key file, oldest first; `current` is the id of the key in use.
pub fn list(be: &dyn Backend, current: KeyId) -> Result<Vec<KeyInfo>> {
    let mut out = Vec::new();
    for (name, _) in be.list(Kind::Key).map_err(Error::backend_err("list", "keys"))? {
        let kf = read_key(be, &name)?;
        out.push(KeyInfo {
            short_id: name.as_str().chars().take(8).collect(),
            current: name == ObjectName::of(&current),
            id: name.to_string(),
            hostname: kf.hostname,
            username: kf.username,
            created: kf.created,
        });
    }
    out.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// Adds a key file for `new_password` wrapping the master key that `password` opens, with the same
/// Argon2id cost as the key in use. Returns the new key's id.
pub fn add(repo: &Repository, password: &Secret, new_password: &Secret, host: &str, user: &str) -> Result<String> {
    add_key(repo, password, new_password, host, user).map(|id| id.to_hex())
}

fn add_key(repo: &Repository, password: &Secret, new_password: &Secret, host: &str, user: &str) -> Result<KeyId> {
    if new_password.0.is_empty() {
        return Err(Error::Usage("the new password is empty".into()));
    }
    let be = repo.backend().as_ref();
    let (master, current) = Repository::unlock(be, password)?;
    let params = read_key(be, &ObjectName::of(&current))?.params;
    let kf = KeyFile::create(&master, &new_password.0, params, host, user)?;
    let bytes = serde_json::to_vec_pretty(&kf).expect("serialize key file");
    let id = KeyId::of_bytes(&bytes);
    let name = ObjectName::of(&id);
    be.write(&name, &bytes).map_err(Error::backend_err("write", &name))?;
    Ok(id)
}

/// Resolves a key id or unique prefix (at least 4 hex digits) among the key files.
pub fn resolve(be: &dyn Backend, spec: &str) -> Result<ObjectName> {
    if spec.len() < 4 || !spec.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Usage(format!("invalid key id {spec:?}: give an id or at least 4 of its hex digits")));
    }
    let spec_l = spec.to_ascii_lowercase();
    let mut m: Vec<ObjectName> = be
        .list(Kind::Key)
        .map_err(Error::backend_err("list", "keys"))?
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| n.as_str().starts_with(&spec_l))
        .collect();
    match m.len() {
        0 => Err(Error::Usage(format!("no key {spec} in the repository (see `clawback key list`)"))),
        1 => Ok(m.pop().unwrap()),
        _ => Err(Error::Usage(format!("key prefix {spec} is ambiguous; give more hex digits"))),
    }
}

/// Removes a key file. Refuses the last key and the key in use (`current`).
pub fn remove(be: &dyn Backend, current: KeyId, spec: &str) -> Result<String> {
    let id = resolve(be, spec)?;
    let count = be.list(Kind::Key).map_err(Error::backend_err("list", "keys"))?.len();
    if count <= 1 {
        return Err(Error::Other(format!(
            "refusing to remove key {}: it is the repository's last key, without it nothing can be read",
            &id.as_str()[..8]
        )));
    }
    if id == ObjectName::of(&current) {
        return Err(Error::Other(format!(
            "refusing to remove key {}: it is the key in use; open the repository with another key's password to remove it",
            &id.as_str()[..8]
        )));
    }
    be.delete(&id).map_err(Error::backend_err("delete", &id))?;
    Ok(id.to_string())
}

/// Changes the password: adds a key for `new_password`, then removes the key in use. Returns
/// (new key id, removed key id).
pub fn passwd(
    repo: &Repository,
    password: &Secret,
    new_password: &Secret,
    host: &str,
    user: &str,
) -> Result<(String, String)> {
    repo.require_deletes("key passwd")?;
    let added = add_key(repo, password, new_password, host, user)?;
    let old = ObjectName::of(&repo.key_id());
    let be = repo.backend().as_ref();
    // The new key must open the repository before the old one goes.
    if read_key(be, &ObjectName::of(&added))?.open(&new_password.0)?.is_none() {
        return Err(Error::Other(format!("the new key {} does not open; the old key was kept", added.short())));
    }
    be.delete(&old).map_err(Error::backend_err("delete", &old))?;
    Ok((added.to_hex(), old.to_string()))
}
