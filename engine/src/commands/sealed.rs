//! Archives that leave the machine: `export --encrypt` wraps the tar.gz in the age format
//! (age-encryption.org/v1, X25519 recipients), which the `age`/`rage` tools and `clawback import
//! --identity` open; `import` recognises such an archive by its header.

use crate::error::{Error, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

/// An age X25519 recipient (a public key, `age1...`).
pub type Recipient = age::x25519::Recipient;

/// The first bytes of every binary age file.
pub const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";

/// Parses `--encrypt` values: an age recipient (`age1...`), or a file of them (one per line, `#`
/// comments), as `age -R` reads.
pub fn recipients(values: &[String]) -> Result<Vec<Recipient>> {
    let mut out = Vec::new();
    for v in values {
        let v = v.trim();
        if v.starts_with("age1") {
            out.push(parse_recipient(v, "--encrypt")?);
            continue;
        }
        let text = std::fs::read_to_string(v).map_err(|e| {
            Error::Usage(format!(
                "--encrypt {v}: neither an age recipient (age1...) nor a readable recipients file ({e})"
            ))
        })?;
        let before = out.len();
        for l in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            out.push(parse_recipient(l, v)?);
        }
        if out.len() == before {
            return Err(Error::Usage(format!("--encrypt {v}: the file names no recipient")));
        }
    }
    Ok(out)
}

fn parse_recipient(s: &str, from: &str) -> Result<Recipient> {
    s.parse::<Recipient>().map_err(|e| {
        Error::Usage(format!(
            "{from}: {s:?} is not an age X25519 recipient ({e}); make a key pair with `age-keygen` and give its public key"
        ))
    })
}

/// Wraps `out` so that what is written to it is encrypted to `recipients`; call `finish` on the
/// result to write the last chunk and get `out` back.
pub fn encrypt<W: Write>(recipients: &[Recipient], out: W) -> Result<age::stream::StreamWriter<W>> {
    let enc = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
        .map_err(|e| Error::Usage(format!("--encrypt: {e}")))?;
    enc.wrap_output(out).map_err(|e| Error::io("write", "the encrypted archive", e))
}

/// Returns `input` decrypted when it is an age file (with the identities in `identity`, an age
/// identity file as `age-keygen` writes), else `input` as it is.
pub fn open_maybe_sealed<'a>(input: Box<dyn Read + 'a>, identity: Option<&Path>) -> Result<Box<dyn Read + 'a>> {
    let mut r = BufReader::with_capacity(1 << 16, input);
    let head = r.fill_buf().map_err(|e| Error::io("read", "the archive", e))?;
    if !head.starts_with(AGE_MAGIC) {
        return Ok(Box::new(r));
    }
    let Some(identity) = identity else {
        return Err(Error::Usage(
            "the archive is encrypted (age); give the identity file that opens it with --identity FILE".into(),
        ));
    };
    let unreadable = |e: &dyn std::fmt::Display| {
        Error::Usage(format!("--identity {}: cannot read it as an age identity file ({e})", identity.display()))
    };
    let ids = age::IdentityFile::from_file(identity.to_string_lossy().into_owned())
        .map_err(|e| unreadable(&e))?
        .into_identities()
        .map_err(|e| unreadable(&e))?;
    let dec = age::Decryptor::new_buffered(r).map_err(|e| Error::Usage(format!("the archive's age header: {e}")))?;
    let out = dec.decrypt(ids.iter().map(|i| i.as_ref() as &dyn age::Identity)).map_err(|e| {
        Error::Usage(format!(
            "cannot decrypt the archive with {} ({e}); give the identity of a recipient it was encrypted to",
            identity.display()
        ))
    })?;
    Ok(Box::new(out))
}
