//! Content-defined chunking with FastCDC (the 2020 variant of the `fastcdc` crate), its gear table
//! keyed by a per-repository seed so chunk boundaries do not reveal content across repositories.
//! Files are read in large batches; every complete chunk of a batch is handed out as a slice of the
//! batch buffer (no copy), so the caller can hash and encrypt them in parallel.

use fastcdc::v2020::{cut_gear, get_gear_with_seed, select_masks, Normalization};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::io::Read;
use std::ops::Range;

/// Chunk size bounds, stored in the repository config so every client cuts alike.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChunkParams {
    pub min: u32,
    pub avg: u32,
    pub max: u32,
}

impl Default for ChunkParams {
    /// See format-spec/README.md, "Chunking", for the measurement behind these numbers.
    fn default() -> Self {
        ChunkParams { min: 32 * 1024, avg: 128 * 1024, max: 512 * 1024 }
    }
}

impl ChunkParams {
    pub fn validate(&self) -> Result<(), String> {
        let ok = self.min >= 64
            && self.avg >= 256
            && self.max >= 1024
            && self.min <= 1 << 20
            && self.avg <= 4 << 20
            && self.max <= 16 << 20
            && self.min < self.avg
            && self.avg < self.max
            && self.min.is_multiple_of(2)
            && self.avg.is_multiple_of(2)
            && self.max.is_multiple_of(2);
        if ok {
            Ok(())
        } else {
            Err(format!("invalid chunk sizes {:?}", self))
        }
    }
}

pub struct Chunker {
    p: ChunkParams,
    mask_s: u64,
    mask_l: u64,
    gear: Cow<'static, [u64]>,
    gear_ls: Cow<'static, [u64]>,
}

impl Chunker {
    pub fn new(p: ChunkParams, seed: u64) -> Self {
        let (mask_s, mask_l) = select_masks(p.avg as usize, Normalization::Level1);
        let (gear, gear_ls) = get_gear_with_seed(seed);
        Chunker { p, mask_s, mask_l, gear, gear_ls }
    }

    pub fn params(&self) -> ChunkParams {
        self.p
    }

    /// Length of the chunk that starts at `data[0]`. `data` must hold at least `max` bytes unless it
    /// is the end of the stream.
    pub fn cut(&self, data: &[u8]) -> usize {
        if data.len() <= self.p.min as usize {
            return data.len();
        }
        let (_, n) = cut_gear(
            data,
            self.p.min as usize,
            self.p.avg as usize,
            self.p.max as usize,
            self.mask_s,
            self.mask_l,
            self.mask_s << 1,
            self.mask_l << 1,
            &self.gear,
            &self.gear_ls,
        );
        n.max(1)
    }

    /// All chunk boundaries of an in-memory buffer that ends the stream.
    pub fn chunks(&self, data: &[u8]) -> Vec<Range<usize>> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < data.len() {
            let n = self.cut(&data[pos..]);
            out.push(pos..pos + n);
            pos += n;
        }
        out
    }

    /// Reads `r` to the end and calls `f` with each batch buffer and the chunk ranges in it. A batch
    /// holds about `batch` bytes (at least one maximal chunk); chunks never straddle batches.
    pub fn for_each_batch<R: Read, E: From<std::io::Error>>(
        &self,
        mut r: R,
        buf: &mut Vec<u8>,
        batch: usize,
        mut f: impl FnMut(&[u8], &[Range<usize>]) -> Result<(), E>,
    ) -> Result<u64, E> {
        let cap = batch.max(2 * self.p.max as usize);
        buf.clear();
        let mut total = 0u64;
        let mut eof = false;
        let mut cuts = Vec::new();
        loop {
            // Fill the buffer up to `cap` or end of stream. `read_to_end` reads into the spare
            // capacity without zeroing it first (zeroing a whole batch for every small file was
            // a sixth of a first backup's CPU time).
            if !eof && buf.len() < cap {
                // Exactly `cap`: left to itself, `read_to_end` would double the buffer as it fills.
                buf.reserve_exact(cap - buf.len());
                let want = (cap - buf.len()) as u64;
                let n = (&mut r).take(want).read_to_end(buf)? as u64;
                total += n;
                eof = n < want;
            }
            cuts.clear();
            let mut pos = 0;
            while pos < buf.len() {
                let rest = &buf[pos..];
                if !eof && rest.len() < self.p.max as usize {
                    break;
                }
                let n = self.cut(rest);
                cuts.push(pos..pos + n);
                pos += n;
            }
            if !cuts.is_empty() {
                f(buf, &cuts)?;
            }
            buf.drain(..pos);
            if eof && buf.is_empty() {
                return Ok(total);
            }
        }
    }
}

/// Reads `r` to the end in batches of whole `size`-byte chunks (the last one shorter), calling `f`
/// with each batch and its chunk ranges; returns the number of bytes read. This is the cut for
/// SQLite database images: page-aligned fixed chunks, so a changed page costs one chunk (content-
/// defined cuts would shift with every change inside a page run). Backup and import share it so
/// the same database gives the same chunks either way.
pub fn for_each_fixed<E: From<std::io::Error>>(
    mut r: impl Read,
    buf: &mut Vec<u8>,
    batch: usize,
    size: usize,
    mut f: impl FnMut(&[u8], &[Range<usize>]) -> Result<(), E>,
) -> Result<u64, E> {
    let size = size.max(1);
    let cap = (batch / size).max(1) * size;
    buf.clear();
    buf.resize(cap, 0);
    let mut total = 0u64;
    loop {
        let mut n = 0;
        while n < cap {
            match r.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        if n == 0 {
            break;
        }
        total += n as u64;
        let cuts: Vec<Range<usize>> = (0..n).step_by(size).map(|s| s..(s + size).min(n)).collect();
        f(&buf[..n], &cuts)?;
        if n < cap {
            break;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngCore, SeedableRng};

    fn data(n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        rand::rngs::StdRng::seed_from_u64(1).fill_bytes(&mut v);
        v
    }

    #[test]
    fn batches_cut_like_one_buffer_and_respect_bounds() {
        let p = ChunkParams { min: 4096, avg: 16384, max: 65536 };
        let c = Chunker::new(p, 42);
        let d = data(1_000_000);
        let whole = c.chunks(&d);
        let mut streamed = Vec::new();
        let mut buf = Vec::new();
        let mut base = 0usize;
        c.for_each_batch::<_, std::io::Error>(&d[..], &mut buf, 100_000, |b, cuts| {
            for r in cuts {
                streamed.push(base + r.start..base + r.end);
                assert_eq!(&b[r.clone()], &d[base + r.start..base + r.end]);
            }
            base += cuts.last().unwrap().end;
            Ok(())
        })
        .unwrap();
        assert_eq!(whole, streamed);
        for r in &whole[..whole.len() - 1] {
            assert!(r.len() >= 4096 && r.len() <= 65536);
        }
        assert_eq!(whole.last().unwrap().end, d.len());
    }

    #[test]
    fn seed_changes_boundaries_and_insert_shifts_few_chunks() {
        let p = ChunkParams { min: 4096, avg: 16384, max: 65536 };
        let d = data(500_000);
        let a = Chunker::new(p, 1).chunks(&d);
        let b = Chunker::new(p, 2).chunks(&d);
        assert_ne!(a, b);
        // Insert bytes near the start: most later chunks keep their content.
        let mut e = d.clone();
        e.splice(1000..1000, [9u8; 100]);
        let c = Chunker::new(p, 1);
        let set: std::collections::HashSet<&[u8]> = a.iter().map(|r| &d[r.clone()]).collect();
        let same = c.chunks(&e).iter().filter(|r| set.contains(&e[(*r).clone()])).count();
        assert!(same + 3 >= a.len(), "{same} of {}", a.len());
    }

    #[test]
    fn empty_and_tiny_inputs() {
        let c = Chunker::new(ChunkParams::default(), 0);
        assert!(c.chunks(&[]).is_empty());
        assert_eq!(c.chunks(b"abc"), vec![0..3]);
    }

    #[test]
    fn fixed_chunks_cover_the_stream_in_whole_sizes() {
        for len in [0usize, 1, 4095, 4096, 4097, 3 * 4096, 15 * 4096 + 17] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let (mut buf, mut got, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
            let n = for_each_fixed::<std::io::Error>(&data[..], &mut buf, 3 * 4096 + 100, 4096, |d, cuts| {
                for c in cuts {
                    got.extend_from_slice(&d[c.clone()]);
                    sizes.push(c.len());
                }
                Ok(())
            })
            .unwrap();
            assert_eq!((n as usize, &got), (len, &data));
            assert!(sizes.iter().rev().skip(1).all(|&s| s == 4096), "{len}: {sizes:?}");
            assert!(sizes.last().is_none_or(|&s| s > 0 && s <= 4096));
        }
    }
}
