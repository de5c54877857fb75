//! Packs: many blobs of one type in one object, followed by an encrypted header listing them, then
//! the header's length as `u32 LE`. A pack is named by the BLAKE3 of its bytes. The header alone is
//! enough to rebuild the index, so losing every index file loses nothing.

use crate::error::{Error, Result};
use crate::format::blob::BlobType;
use crate::format::canonical;
use crate::format::codec;
use crate::format::crypto::{Keys, AAD_PACK_HEADER};
use crate::format::id::{BlobId, PackId};
use serde::{Deserialize, Serialize};

/// One blob's place in a pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackEntry {
    pub ty: BlobType,
    pub id: BlobId,
    pub offset: u32,
    pub length: u32,
    pub raw_length: u32,
}

#[derive(Serialize, Deserialize)]
struct PackHeader {
    version: u8,
    entries: Vec<PackEntry>,
}

/// Largest pack accepted when reading (format-spec §7): writers close packs at 1 GiB at most, plus
/// one blob of at most 256 MiB.
pub const MAX_PACK_LEN: u64 = 1 << 31;
/// Largest pack header plaintext accepted when reading.
const MAX_HEADER_PLAIN: usize = 64 << 20;

/// Refuses a pack of `len` bytes (as listed, read, or given by an index) larger than
/// `MAX_PACK_LEN`, before anything of it is read.
pub fn check_len(id: &PackId, len: u64) -> Result<()> {
    if len > MAX_PACK_LEN {
        return Err(Error::corrupt("pack", id, format!("{len} bytes, larger than the 2 GiB a pack may be")));
    }
    Ok(())
}

/// Accumulates encrypted blobs until the pack is full: in memory, or appended to a spool file
/// ([`PackWriter::spooled`]) so a filling pack costs no memory.
pub struct PackWriter {
    pub ty: BlobType,
    buf: Vec<u8>,
    entries: Vec<PackEntry>,
    spool: Option<Spool>,
}

/// A spooled pack's file, the hash of what went into it, and the first write error.
struct Spool {
    w: std::io::BufWriter<std::fs::File>,
    hash: blake3::Hasher,
    len: usize,
    err: Option<std::io::Error>,
}

impl Spool {
    fn append(&mut self, b: &[u8]) {
        use std::io::Write;
        self.hash.update(b);
        self.len += b.len();
        if self.err.is_none() {
            if let Err(e) = self.w.write_all(b) {
                self.err = Some(e);
            }
        }
    }
}

/// A finished pack, ready to store.
pub struct FinishedPack {
    pub id: PackId,
    pub bytes: Vec<u8>,
    pub entries: Vec<PackEntry>,
}

impl PackWriter {
    pub fn new(ty: BlobType, capacity: usize) -> Self {
        PackWriter { ty, buf: Vec::with_capacity(capacity), entries: Vec::new(), spool: None }
    }

    /// A writer that appends the pack to `file` (empty, at its start) instead of memory; finished
    /// with [`PackWriter::finish_spooled`].
    pub fn spooled(ty: BlobType, file: std::fs::File) -> Self {
        let spool =
            Spool { w: std::io::BufWriter::with_capacity(1 << 16, file), hash: Default::default(), len: 0, err: None };
        PackWriter { ty, buf: Vec::new(), entries: Vec::new(), spool: Some(spool) }
    }

    pub fn add(&mut self, id: BlobId, stored: &[u8], raw_length: usize) {
        let offset = self.len() as u32;
        match &mut self.spool {
            Some(s) => s.append(stored),
            None => self.buf.extend_from_slice(stored),
        }
        self.entries.push(PackEntry {
            ty: self.ty,
            id,
            offset,
            length: stored.len() as u32,
            raw_length: raw_length as u32,
        });
    }

    pub fn len(&self) -> usize {
        self.spool.as_ref().map_or(self.buf.len(), |s| s.len)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The sealed header and its length, which end the pack.
    fn tail(entries: &[PackEntry], keys: &Keys) -> Vec<u8> {
        let header = postcard::to_allocvec(&PackHeader { version: 1, entries: entries.to_vec() })
            .expect("serialize pack header");
        let mut sealed = codec::seal_object(keys, &[AAD_PACK_HEADER], &header, codec::METADATA_LEVEL);
        let n = sealed.len() as u32;
        sealed.extend_from_slice(&n.to_le_bytes());
        sealed
    }

    /// Finishes a pack held in memory.
    pub fn finish(self, keys: &Keys) -> FinishedPack {
        assert!(self.spool.is_none(), "a spooled pack is finished with finish_spooled");
        let PackWriter { mut buf, entries, .. } = self;
        buf.extend_from_slice(&Self::tail(&entries, keys));
        FinishedPack { id: PackId::of_bytes(&buf), bytes: buf, entries }
    }

    /// Finishes a spooled pack: its header is appended to the file, which is flushed and closed.
    /// Returns the pack's id, length and entries.
    pub fn finish_spooled(self, keys: &Keys) -> std::io::Result<(PackId, u64, Vec<PackEntry>)> {
        let PackWriter { entries, spool, .. } = self;
        let mut s = spool.expect("a spooled pack");
        s.append(&Self::tail(&entries, keys));
        if let Some(e) = s.err.take() {
            return Err(e);
        }
        s.w.into_inner().map_err(|e| e.into_error())?;
        Ok((PackId(*s.hash.finalize().as_bytes()), s.len as u64, entries))
    }
}

/// Where the header of a pack of `pack_len` bytes starts, from the pack's last 4 bytes. Refuses a
/// pack larger than `MAX_PACK_LEN` too: every reader of a pack header comes here first.
pub fn header_range(pack_len: u64, tail: &[u8; 4]) -> Result<(u64, u64)> {
    if pack_len > MAX_PACK_LEN {
        return Err(Error::corrupt("pack", "-", "larger than the 2 GiB a pack may be"));
    }
    let hlen = u32::from_le_bytes(*tail) as u64;
    if pack_len < 4 || hlen + 4 > pack_len {
        return Err(Error::corrupt("pack", "-", "header length exceeds the pack"));
    }
    Ok((pack_len - 4 - hlen, hlen))
}

/// Decodes and checks a pack header read from a pack whose blobs occupy `blobs_len` bytes.
pub fn decode_header(keys: &Keys, pack: &PackId, sealed: &[u8], blobs_len: u64) -> Result<Vec<PackEntry>> {
    let plain = codec::open_object(keys, &[AAD_PACK_HEADER], sealed, "pack header", &pack.to_hex(), MAX_HEADER_PLAIN)?;
    // The first byte is `version`: a later version is named as such, not as bad encoding.
    if let Some(&v) = plain.first().filter(|&&v| v != 1) {
        return Err(Error::corrupt("pack header", pack, format!("unsupported version {v}")));
    }
    let h: PackHeader = canonical::postcard(&plain).map_err(|e| Error::corrupt("pack header", pack, e))?;
    let mut expect = 0u64;
    for e in &h.entries {
        if e.offset as u64 != expect {
            return Err(Error::corrupt("pack header", pack, "blobs are not contiguous"));
        }
        expect += e.length as u64;
    }
    if expect != blobs_len {
        return Err(Error::corrupt("pack header", pack, "blobs do not fill the pack"));
    }
    Ok(h.entries)
}

/// Reads the header of a whole pack held in memory, verifying the pack's hash first.
pub fn parse(keys: &Keys, id: &PackId, bytes: &[u8]) -> Result<Vec<PackEntry>> {
    check_len(id, bytes.len() as u64)?;
    if PackId::of_bytes(bytes) != *id {
        return Err(Error::corrupt("pack", id, "content does not match its name"));
    }
    header_of(keys, id, bytes)
}

/// Reads the header of a whole pack held in memory, without checking the pack's hash.
pub fn header_of(keys: &Keys, id: &PackId, bytes: &[u8]) -> Result<Vec<PackEntry>> {
    if bytes.len() < 4 {
        return Err(Error::corrupt("pack", id, "too short"));
    }
    let tail: [u8; 4] = bytes[bytes.len() - 4..].try_into().unwrap();
    let (start, len) =
        header_range(bytes.len() as u64, &tail).map_err(|_| Error::corrupt("pack", id, "bad header length"))?;
    decode_header(keys, id, &bytes[start as usize..(start + len) as usize], start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::blob;
    use crate::format::crypto::MasterKey;

    #[test]
    fn pack_round_trip() {
        let keys = Keys::derive(&MasterKey([9; 32]));
        let mut w = PackWriter::new(BlobType::Data, 1024);
        let mut ids = vec![];
        for i in 0..5u8 {
            let plain = vec![i; 1000 + i as usize];
            let id = keys.blob_id(&plain);
            w.add(id, &blob::encode(&keys, BlobType::Data, &id, &plain, 3), plain.len());
            ids.push((id, plain));
        }
        let p = w.finish(&keys);
        let entries = parse(&keys, &p.id, &p.bytes).unwrap();
        assert_eq!(entries, p.entries);
        for (e, (id, plain)) in entries.iter().zip(&ids) {
            let s = &p.bytes[e.offset as usize..(e.offset + e.length) as usize];
            assert_eq!(&blob::decode(&keys, BlobType::Data, id, s, e.raw_length as usize).unwrap(), plain);
        }
        let mut bad = p.bytes.clone();
        bad[3] ^= 1;
        assert!(parse(&keys, &p.id, &bad).is_err());
        assert!(parse(&keys, &p.id, &p.bytes[..p.bytes.len() - 1]).is_err());
    }

    /// A pack spooled to a file is the pack `finish` makes: named by the hash of the file's bytes,
    /// with the same blobs at the same places.
    #[test]
    fn a_spooled_pack_is_a_pack() {
        let keys = Keys::derive(&MasterKey([9; 32]));
        let path = tempfile::NamedTempFile::new().unwrap().into_temp_path();
        let mut s = PackWriter::spooled(BlobType::Data, std::fs::File::create(&path).unwrap());
        let mut m = PackWriter::new(BlobType::Data, 0);
        for i in 0..5u8 {
            let plain = vec![i; 70_000 + i as usize];
            let id = keys.blob_id(&plain);
            let stored = blob::encode(&keys, BlobType::Data, &id, &plain, 0);
            s.add(id, &stored, plain.len());
            m.add(id, &stored, plain.len());
            assert_eq!(s.len(), m.len());
        }
        let (id, len, entries) = s.finish_spooled(&keys).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, len);
        assert_eq!(parse(&keys, &id, &bytes).unwrap(), entries);
        let mem = m.finish(&keys);
        assert_eq!(entries, mem.entries);
        let blobs_len = entries.iter().map(|e| e.length as usize).sum::<usize>();
        assert_eq!(bytes[..blobs_len], mem.bytes[..blobs_len]);
    }

    #[test]
    fn header_encodings_other_than_the_canonical_one_are_refused() {
        let keys = Keys::derive(&MasterKey([9; 32]));
        let mut w = PackWriter::new(BlobType::Tree, 1024);
        let plain = b"a tree".to_vec();
        let id = keys.blob_id(&plain);
        let stored = blob::encode(&keys, BlobType::Tree, &id, &plain, 0);
        w.add(id, &stored, plain.len());
        let good = w.finish(&keys);
        let area = stored.len() as u64;
        let header = postcard::to_allocvec(&PackHeader { version: 1, entries: good.entries.clone() }).unwrap();
        let seal = |plain: &[u8]| codec::seal_object(&keys, &[AAD_PACK_HEADER], plain, 0);
        let pid = good.id;
        assert_eq!(decode_header(&keys, &pid, &seal(&header), area).unwrap(), good.entries);
        let trailing = [&header[..], &[0]].concat();
        let e = decode_header(&keys, &pid, &seal(&trailing), area).unwrap_err().to_string();
        assert!(e.contains("1 bytes after"), "{e}");
        // The first entry's offset (0) as 80 00: version, count, type, 32 id bytes, then offset.
        assert_eq!(header[3 + 32], 0);
        let overlong = [&header[..35], &[0x80, 0x00], &header[36..]].concat();
        let e = decode_header(&keys, &pid, &seal(&overlong), area).unwrap_err().to_string();
        assert!(e.contains("not in canonical form"), "{e}");
        let mut v2 = header.clone();
        v2[0] = 2;
        let e = decode_header(&keys, &pid, &seal(&v2), area).unwrap_err().to_string();
        assert!(e.contains("unsupported version 2"), "{e}");
    }

    #[test]
    fn packs_over_two_gib_are_refused_before_reading() {
        let id = PackId::default();
        assert!(check_len(&id, MAX_PACK_LEN).is_ok());
        let e = check_len(&id, MAX_PACK_LEN + 1).unwrap_err();
        assert!(matches!(e, Error::Corrupt { what: "pack", .. }) && e.to_string().contains("2 GiB"), "{e}");
        // The header of a pack just over the limit is not located, whatever its trailer says.
        assert!(header_range(MAX_PACK_LEN, &100u32.to_le_bytes()).is_ok());
        let e = header_range(MAX_PACK_LEN + 1, &100u32.to_le_bytes()).unwrap_err();
        assert!(e.to_string().contains("2 GiB"), "{e}");
    }
}
