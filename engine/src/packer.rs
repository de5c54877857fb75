//! Filling packs: blobs of each type go into their own open pack; a pack is written when it
//! reaches the target size, and an index file is written after every `PACKS_PER_INDEX` packs and
//! at the end, so the index always follows its packs and an interrupted writer keeps what it
//! finished. Backup (fed through a channel) and import (fed directly) share it.

use crate::backend::Kind;
use crate::blob::BlobType;
use crate::error::Result;
use crate::id::BlobId;
use crate::index::{IndexFile, IndexPack};
use crate::pack::PackWriter;
use crate::repo::Repository;

/// An index file is written after this many packs, so a long interrupted backup keeps its progress.
pub const PACKS_PER_INDEX: usize = 64;

pub struct Packer<'a> {
    repo: &'a Repository,
    pack_size: usize,
    /// Count what would be written, write nothing.
    dry: bool,
    writers: [PackWriter; 2],
    done: Vec<IndexPack>,
    /// Bytes written (or, dry, that would be): packs and index files.
    pub bytes_stored: u64,
}

impl<'a> Packer<'a> {
    pub fn new(repo: &'a Repository, dry: bool) -> Self {
        Packer {
            repo,
            pack_size: repo.config().pack_size as usize,
            dry,
            writers: [PackWriter::new(BlobType::Data, 0), PackWriter::new(BlobType::Tree, 0)],
            done: Vec::new(),
            bytes_stored: 0,
        }
    }

    /// Adds an encrypted blob; writes its pack (and maybe an index file) when the pack is full.
    pub fn add(&mut self, ty: BlobType, id: BlobId, stored: &[u8], raw_len: usize) -> Result<()> {
        let pack_size = self.pack_size;
        let w = &mut self.writers[ty as usize];
        if w.is_empty() {
            *w = PackWriter::new(ty, pack_size + pack_size / 8);
        }
        w.add(id, stored, raw_len);
        if w.len() >= pack_size {
            let full = std::mem::replace(w, PackWriter::new(ty, 0));
            self.flush(full)?;
            if self.done.len() >= PACKS_PER_INDEX {
                self.write_index()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self, w: PackWriter) -> Result<()> {
        let p = w.finish(self.repo.keys());
        if !self.dry {
            self.repo.save_pack(&p)?;
        }
        self.bytes_stored += p.bytes.len() as u64;
        self.done.push(IndexPack { id: p.id, size: p.bytes.len() as u64, blobs: p.entries });
        Ok(())
    }

    fn write_index(&mut self) -> Result<()> {
        if self.done.is_empty() {
            return Ok(());
        }
        let f = IndexFile { version: 1, supersedes: vec![], packs: std::mem::take(&mut self.done) };
        if self.dry {
            self.bytes_stored += f.encode(self.repo.keys()).len() as u64;
        } else {
            let id = self.repo.save_index(&f)?;
            self.bytes_stored += self.repo.backend().size(Kind::Index, &id.to_hex()).unwrap_or(0);
        }
        Ok(())
    }

    /// Writes the packs still open and the last index file. Returns the bytes stored in all.
    pub fn finish(mut self) -> Result<u64> {
        for ty in [BlobType::Data, BlobType::Tree] {
            let w = std::mem::replace(&mut self.writers[ty as usize], PackWriter::new(ty, 0));
            if !w.is_empty() {
                self.flush(w)?;
            }
        }
        self.write_index()?;
        Ok(self.bytes_stored)
    }
}
