//! How an upload proves that its body arrived as it was sent. Each single-part PUT carries a
//! checksum of its body that the store recomputes, refusing the object (`BadDigest`) when the two
//! differ, so a body damaged on the way is never stored (the `retry` decorator sends it again).
//!
//! The checksum is CRC32C (`x-amz-checksum-crc32c`) wherever the store checks it, else
//! `Content-MD5`, which every S3-compatible store checks. CRC32C costs almost nothing to compute;
//! MD5 took 7% of a first backup's CPU on the client, and a store recomputes it too. A store that
//! checks CRC32C says so by returning the checksum with its answer (AWS S3, MinIO, SeaweedFS); one
//! that does not may ignore the header. So the first upload of a session carries both, and what
//! the store answered decides what the later ones carry. Uploads that set object-lock retention
//! carry `Content-MD5` too (AWS S3 has required it on them), and parts of a multipart upload
//! carry it alone: a part's CRC32C must be announced when the upload is created, which not every
//! store accepts.

use base64::Engine as _;
use md5::{Digest as _, Md5};
use std::sync::atomic::{AtomicU8, Ordering};

/// Which checksums an upload carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Check {
    Crc32c,
    Md5,
    /// Both, to learn which the store checks.
    Both,
}

/// What this session has learnt about the store: nothing yet, it checks CRC32C, or it does not.
pub(super) struct Integrity(AtomicU8);

const UNKNOWN: u8 = 0;
const CRC32C: u8 = 1;
const MD5: u8 = 2;

impl Integrity {
    pub fn new() -> Self {
        Integrity(AtomicU8::new(UNKNOWN))
    }

    /// What the next single-part upload carries.
    pub fn check(&self) -> Check {
        match self.0.load(Ordering::Relaxed) {
            CRC32C => Check::Crc32c,
            MD5 => Check::Md5,
            _ => Check::Both,
        }
    }

    /// After an upload that carried both checksums was stored: the store checks CRC32C if it
    /// answered with the one that was sent.
    pub fn learn(&self, sent: &Sums, answered: Option<&str>) {
        let checks = sent.crc32c.is_some() && sent.crc32c.as_deref() == answered;
        // (Only from "unknown": every upload of the first batch learns the same thing.)
        let _ =
            self.0.compare_exchange(UNKNOWN, if checks { CRC32C } else { MD5 }, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The store refused an upload that carried both: from now on `Content-MD5` only.
    pub fn refused_crc32c(&self) {
        self.0.store(MD5, Ordering::Relaxed);
    }
}

/// The base64 checksums of a body, as the headers carry them.
#[derive(Clone, Debug, Default)]
pub(super) struct Sums {
    pub md5: Option<String>,
    pub crc32c: Option<String>,
}

/// Computes the checksums `check` asks for over a body given in pieces.
pub(super) struct Hasher {
    md5: Option<Md5>,
    crc32c: Option<crc_fast::Digest>,
}

impl Hasher {
    pub fn new(check: Check) -> Self {
        Hasher {
            md5: (check != Check::Crc32c).then(Md5::new),
            crc32c: (check != Check::Md5).then(|| crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi)),
        }
    }

    pub fn update(&mut self, piece: &[u8]) {
        if let Some(m) = &mut self.md5 {
            m.update(piece);
        }
        if let Some(c) = &mut self.crc32c {
            c.update(piece);
        }
    }

    pub fn finish(self) -> Sums {
        let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
        Sums {
            md5: self.md5.map(|m| b64(&m.finalize())),
            // The header holds the 32-bit checksum big-endian.
            crc32c: self.crc32c.map(|c| b64(&(c.finalize() as u32).to_be_bytes())),
        }
    }

    pub fn of(check: Check, body: &[u8]) -> Sums {
        let mut h = Hasher::new(check);
        h.update(body);
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_match_the_published_values() {
        // CRC32C of "123456789" is 0xE3069283 (RFC 3720, appendix B.4); MD5 of "" is d41d8cd9...
        let s = Hasher::of(Check::Both, b"123456789");
        assert_eq!(
            s.crc32c.as_deref(),
            Some(base64::engine::general_purpose::STANDARD.encode([0xe3, 0x06, 0x92, 0x83]).as_str())
        );
        assert_eq!(Hasher::of(Check::Md5, b"").md5.as_deref(), Some("1B2M2Y8AsgTpgAmY7PhCfg=="));
        assert!(Hasher::of(Check::Md5, b"x").crc32c.is_none());
        assert!(Hasher::of(Check::Crc32c, b"x").md5.is_none());
        // In pieces as whole.
        let mut h = Hasher::new(Check::Both);
        h.update(b"1234");
        h.update(b"56789");
        let p = h.finish();
        assert_eq!((p.md5, p.crc32c), (s.md5, s.crc32c));
    }

    #[test]
    fn the_first_answer_decides_what_later_uploads_carry() {
        let sent = Hasher::of(Check::Both, b"pack");
        let i = Integrity::new();
        assert_eq!(i.check(), Check::Both);
        i.learn(&sent, sent.crc32c.as_deref());
        assert_eq!(i.check(), Check::Crc32c);
        // A later answer does not undo it.
        i.learn(&sent, None);
        assert_eq!(i.check(), Check::Crc32c);

        let i = Integrity::new();
        i.learn(&sent, None);
        assert_eq!(i.check(), Check::Md5, "a store that does not answer with the checksum may not check it");
        let i = Integrity::new();
        i.learn(&sent, Some("AAAAAA=="));
        assert_eq!(i.check(), Check::Md5);
        let i = Integrity::new();
        i.refused_crc32c();
        assert_eq!(i.check(), Check::Md5);
    }
}
