//! The envelope of every encrypted object: a compression flag, then the payload, sealed by
//! `crypto::Keys`. Flag 0: the payload is the plaintext. Flag 1: `u64 LE` plaintext length, then one
//! zstd frame and nothing after it. Flag 2 (blobs only): one zstd frame compressed with a
//! repository dictionary (`format::dict`), which its header names. Compression is kept only when
//! it saves at least 1/32 of the bytes.

use crate::error::{Error, Result};
use crate::format::crypto::{Keys, NONCE_LEN, OVERHEAD};
use crate::format::dict::Dict;
use std::cell::RefCell;
use zstd::zstd_safe::{CCtx, CParameter, DCtx, DictAttachPref};

/// The zstd level of every metadata object (index files, pack headers, trees, snapshots). Data
/// blobs use the repository's own level (`RepoConfig::compression`).
pub const METADATA_LEVEL: i32 = 3;

pub const FLAG_RAW: u8 = 0;
pub const FLAG_ZSTD: u8 = 1;
pub const FLAG_DICT: u8 = 2;

thread_local! {
    /// This thread's compression context and output buffer, with and without a dictionary (one
    /// of each per walker thread took 1.5 MiB more per thread).
    static COMPRESSOR: RefCell<Option<(CCtx<'static>, Vec<u8>)>> = const { RefCell::new(None) };
    /// This thread's decompression context (one per call would allocate and free ~100 KiB each).
    static DECOMPRESSOR: RefCell<Option<DCtx<'static>>> = const { RefCell::new(None) };
}

/// Writes the payload for a blob's `plain` at the end of `out`: with `dict` (prepared for
/// `level`) a flag-2 payload when it saves at least 1/32, else as [`encode_payload`] does.
pub fn encode_payload_with(plain: &[u8], level: i32, dict: Option<&Dict>, out: &mut Vec<u8>) {
    match dict.and_then(|d| d.cdict(level)) {
        Some(cdict) if level > 0 && plain.len() >= 64 => {
            if worth_compressing(plain) && try_compress_dict(plain, cdict, out) {
                return;
            }
            out.push(FLAG_RAW);
            out.extend_from_slice(plain);
        }
        _ => encode_payload(plain, level, out),
    }
}

/// Appends a flag-2 payload for `plain` compressed with `cdict` if that saves at least 1/32 of
/// the bytes; otherwise leaves `out` as it was and returns false.
fn try_compress_dict(plain: &[u8], cdict: &zstd::zstd_safe::CDict<'static>, out: &mut Vec<u8>) -> bool {
    with_compressor(plain.len(), |cctx, scratch| match compress_attached(cctx, scratch, plain, cdict) {
        Ok(n) if n + 1 < plain.len() - plain.len() / 32 => {
            out.reserve(1 + n);
            out.push(FLAG_DICT);
            out.extend_from_slice(&scratch[..n]);
            true
        }
        _ => false,
    })
}

/// Compresses `plain` with `cdict` attached (its tables read where they are) rather than copied
/// into the context, which zstd does by default for inputs above 16 KiB: copying 768 KiB of
/// tables per chunk, then matching across two buffers, took 4% more CPU in a first backup of 3 GB
/// (21.7-22.0 s of user time against 20.8-20.9 s) for the same bytes stored. The frame is the
/// same either way.
fn compress_attached(
    cctx: &mut CCtx<'static>,
    dst: &mut [u8],
    plain: &[u8],
    cdict: &zstd::zstd_safe::CDict<'static>,
) -> zstd::zstd_safe::SafeResult {
    // (The context was made to attach dictionaries: `with_compressor`.)
    cctx.ref_cdict(cdict)?;
    let r = cctx.compress2(dst, plain);
    // The context keeps no reference to a dictionary that may be dropped before it is.
    let _ = cctx.load_dictionary(&[]);
    r
}

/// Runs `f` with this thread's compression context and a scratch buffer of at least the worst
/// case for `len` bytes (zeroed only when it grows: cheaper than growing and zeroing the output
/// to that bound for every chunk).
fn with_compressor<T>(len: usize, f: impl FnOnce(&mut CCtx<'static>, &mut [u8]) -> T) -> T {
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        let (cctx, scratch) = c.get_or_insert_with(|| {
            let mut cctx = CCtx::create();
            // Used by dictionary compression only ([`compress_attached`]): the simple API that
            // compresses without a dictionary takes no advanced parameter.
            let _ = cctx.set_parameter(CParameter::ForceAttachDict(DictAttachPref::ForceAttach));
            (cctx, Vec::new())
        });
        let bound = zstd::zstd_safe::compress_bound(len);
        if scratch.len() < bound {
            scratch.resize(bound, 0);
        }
        f(cctx, &mut scratch[..bound])
    })
}

/// Checks a flag-2 payload's frame (one frame, nothing after it, a declared content size of at
/// most `max_len`, a dictionary ID) and returns the dictionary ID and the declared size.
pub fn dict_frame(payload: &[u8], max_len: usize) -> std::result::Result<(u32, usize), String> {
    if payload.first() != Some(&FLAG_DICT) {
        return Err("not a dictionary-compressed payload".into());
    }
    let frame = &payload[1..];
    match zstd::zstd_safe::find_frame_compressed_size(frame) {
        Ok(len) if len == frame.len() => {}
        _ => return Err("compressed data is not exactly one zstd frame".into()),
    }
    let n = match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(n)) => n,
        _ => return Err("the zstd frame does not declare its content size".into()),
    };
    if n > max_len as u64 {
        return Err(format!("declared length {n} exceeds the limit {max_len}"));
    }
    let id = zstd::zstd_safe::get_dict_id_from_frame(frame)
        .ok_or("a dictionary-compressed payload whose frame names no dictionary")?;
    Ok((id.get(), n as usize))
}

/// Decodes a flag-2 payload with `dict`, refusing plaintexts longer than `max_len` before
/// allocating for them.
pub fn decode_dict_payload(payload: &[u8], max_len: usize, dict: &Dict) -> std::result::Result<Vec<u8>, String> {
    let (id, n) = dict_frame(payload, max_len)?;
    if id != dict.zstd_id {
        return Err(format!("the frame needs dictionary {id}, not {}", dict.zstd_id));
    }
    let mut out = Vec::with_capacity(n);
    DECOMPRESSOR
        .with(|d| {
            let mut d = d.borrow_mut();
            let dctx = d.get_or_insert_with(DCtx::create);
            dctx.decompress_using_ddict(&mut out, &payload[1..], dict.ddict())
        })
        .map_err(|e| format!("zstd: {}", zstd::zstd_safe::get_error_name(e)))?;
    if out.len() != n {
        return Err("decompressed length differs from the declared length".into());
    }
    Ok(out)
}

/// Writes the payload (flag, length, data) for `plain` at the end of `out`. `level` 0 means store raw.
/// Data that looks incompressible on a sample (`worth_compressing`) is stored raw without trying.
pub fn encode_payload(plain: &[u8], level: i32, out: &mut Vec<u8>) {
    if level > 0 && worth_compressing(plain) && try_compress(plain, level, out) {
        return;
    }
    out.push(FLAG_RAW);
    out.extend_from_slice(plain);
}

/// Appends a compressed payload (flag 1) for `plain` to `out` if zstd at `level` saves at least
/// 1/32 of the bytes; otherwise leaves `out` as it was and returns false.
pub fn try_compress(plain: &[u8], level: i32, out: &mut Vec<u8>) -> bool {
    if plain.len() < 64 {
        return false;
    }
    with_compressor(plain.len(), |cctx, scratch| match cctx.compress(scratch, plain, level) {
        Ok(n) if n + 9 < plain.len() - plain.len() / 32 => {
            out.reserve(9 + n);
            out.push(FLAG_ZSTD);
            out.extend_from_slice(&(plain.len() as u64).to_le_bytes());
            out.extend_from_slice(&scratch[..n]);
            true
        }
        _ => false,
    })
}

/// Bytes sampled by `worth_compressing`: two windows, at a quarter and at three quarters.
const PROBE_WINDOW: usize = 2048;
/// Order-0 entropy (bits per byte) above which a sample is taken for already-compressed data
/// (JPEG, Ogg, gzip, encrypted files measure 7.9-8.0; text, JSON, code and SQLite pages 3-6).
const PROBE_MAX_ENTROPY: f64 = 7.6;

/// A cheap guess, from the byte histogram of a 4 KiB sample, whether zstd can shrink `plain`.
/// Small inputs are always worth a try (compressing them costs little).
pub fn worth_compressing(plain: &[u8]) -> bool {
    if plain.len() < 4 * PROBE_WINDOW {
        return true;
    }
    let mut hist = [0u32; 256];
    for at in [plain.len() / 4, plain.len() * 3 / 4] {
        for &b in &plain[at..at + PROBE_WINDOW] {
            hist[b as usize] += 1;
        }
    }
    let n = (2 * PROBE_WINDOW) as f64;
    let entropy: f64 = hist
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum();
    entropy < PROBE_MAX_ENTROPY
}

/// Decodes a payload, refusing plaintexts longer than `max_len` before allocating for them.
pub fn decode_payload(payload: &[u8], max_len: usize) -> std::result::Result<Vec<u8>, String> {
    match payload.first() {
        Some(&FLAG_RAW) => {
            if payload.len() - 1 > max_len {
                return Err("payload longer than allowed".into());
            }
            Ok(payload[1..].to_vec())
        }
        Some(&FLAG_ZSTD) => {
            if payload.len() < 9 {
                return Err("truncated compressed payload".into());
            }
            let n = u64::from_le_bytes(payload[1..9].try_into().unwrap());
            if n > max_len as u64 {
                return Err(format!("declared length {n} exceeds the limit {max_len}"));
            }
            // One frame and nothing after it (format-spec §6): zstd would also decompress a second
            // frame, or skip a skippable one, into the same output. This reads frame headers only.
            let frame = &payload[9..];
            match zstd::zstd_safe::find_frame_compressed_size(frame) {
                Ok(len) if len == frame.len() => {}
                _ => return Err("compressed data is not exactly one zstd frame".into()),
            }
            let mut out = Vec::with_capacity(n as usize);
            DECOMPRESSOR
                .with(|d| {
                    let mut d = d.borrow_mut();
                    let dctx = d.get_or_insert_with(DCtx::create);
                    dctx.decompress(&mut out, frame)
                })
                .map_err(|e| format!("zstd: {}", zstd::zstd_safe::get_error_name(e)))?;
            if out.len() as u64 != n {
                return Err("decompressed length differs from the declared length".into());
            }
            Ok(out)
        }
        Some(&FLAG_DICT) => Err("compressed with a dictionary (flag 2), which only blobs may be".into()),
        Some(f) => Err(format!("unknown compression flag {f}")),
        None => Err("empty payload".into()),
    }
}

/// Compresses (maybe) and encrypts a whole object.
pub fn seal_object(keys: &Keys, aad: &[&[u8]], plain: &[u8], level: i32) -> Vec<u8> {
    let mut buf = Vec::with_capacity(plain.len() / 2 + OVERHEAD + 16);
    buf.resize(NONCE_LEN, 0);
    encode_payload(plain, level, &mut buf);
    keys.seal_in_place(aad, &mut buf);
    buf
}

/// Decrypts and decompresses an object sealed by `seal_object`.
pub fn open_object(
    keys: &Keys,
    aad: &[&[u8]],
    sealed: &[u8],
    what: &'static str,
    id: &str,
    max_len: usize,
) -> Result<Vec<u8>> {
    let payload = keys
        .open(aad, sealed)
        .ok_or_else(|| Error::corrupt(what, id, "authentication failed (damaged, or not from this repository)"))?;
    decode_payload(&payload, max_len).map_err(|e| Error::corrupt(what, id, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::crypto::{MasterKey, AAD_INDEX};

    #[test]
    fn compressible_shrinks_incompressible_stays_raw() {
        let text = b"the agent remembered the user's birthday. ".repeat(200);
        let mut out = Vec::new();
        encode_payload(&text, 3, &mut out);
        assert_eq!(out[0], FLAG_ZSTD);
        assert!(out.len() < text.len() / 4);
        assert_eq!(decode_payload(&out, text.len()).unwrap(), text);
        assert!(decode_payload(&out, text.len() - 1).is_err(), "limit enforced");

        let noise: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        let mut out = Vec::new();
        encode_payload(&noise, 3, &mut out);
        let mut raw = Vec::new();
        encode_payload(&noise, 0, &mut raw);
        assert_eq!(raw[0], FLAG_RAW);
        assert_eq!(decode_payload(&out, 4096).unwrap(), noise);
    }

    #[test]
    fn probe_skips_noise_and_keeps_text() {
        let mut x = 0x9e3779b97f4a7c15u64;
        let noise: Vec<u8> = (0..65536)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(!worth_compressing(&noise));
        let mut out = Vec::new();
        encode_payload(&noise, 3, &mut out);
        assert_eq!(out[0], FLAG_RAW);
        let text = b"{\"role\":\"assistant\",\"content\":\"the agent remembered\"}\n".repeat(2000);
        assert!(worth_compressing(&text));
        assert!(worth_compressing(&noise[..100]), "small inputs are always tried");
    }

    #[test]
    fn hostile_payloads_error_without_panicking() {
        assert!(decode_payload(&[], 10).is_err());
        assert!(decode_payload(&[7], 10).is_err());
        assert!(decode_payload(&[1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 1 << 20).is_err());
        assert!(decode_payload(&[1, 5, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3], 10).is_err());
    }

    #[test]
    fn a_compressed_payload_is_one_zstd_frame_and_nothing_after() {
        let a = b"the first half of the plaintext. ".repeat(20);
        let b = b"and the second half, in a frame of its own. ".repeat(20);
        let payload = |frames: &[&[u8]], n: usize| {
            let mut p = vec![FLAG_ZSTD];
            p.extend_from_slice(&(n as u64).to_le_bytes());
            frames.iter().for_each(|f| p.extend_from_slice(f));
            p
        };
        let fa = zstd::bulk::compress(&a, 3).unwrap();
        let fb = zstd::bulk::compress(&b, 3).unwrap();
        assert_eq!(decode_payload(&payload(&[&fa], a.len()), 1 << 20).unwrap(), a);
        // zstd itself decompresses both frames into one output of the declared length.
        let two = payload(&[&fa, &fb], a.len() + b.len());
        assert_eq!(zstd::bulk::decompress(&two[9..], a.len() + b.len()).unwrap().len(), a.len() + b.len());
        let e = decode_payload(&two, 1 << 20).unwrap_err();
        assert!(e.contains("not exactly one zstd frame"), "{e}");
        // A skippable frame (magic 0x184D2A50, length 4) after the frame: zstd skips it.
        let skippable = [0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4];
        let skip = payload(&[&fa, &skippable], a.len());
        assert_eq!(zstd::bulk::decompress(&skip[9..], a.len()).unwrap(), a);
        assert!(decode_payload(&skip, 1 << 20).is_err());
        assert!(decode_payload(&payload(&[&fa, &[0]], a.len()), 1 << 20).is_err(), "a byte after the frame");
        assert!(decode_payload(&payload(&[&fa[..fa.len() - 1]], a.len()), 1 << 20).is_err(), "a truncated frame");
    }

    fn trained() -> Dict {
        let s = crate::format::dict::tests::samples();
        let refs: Vec<&[u8]> = s.iter().map(|v| v.as_slice()).collect();
        let bytes = crate::format::dict::train(&refs, 4096).unwrap();
        Dict::from_bytes("d".into(), bytes).unwrap()
    }

    #[test]
    fn a_dictionary_payload_round_trips_and_is_checked() {
        let d = trained();
        let plain =
            b"{\"role\":\"assistant\",\"turn\":12,\"content\":\"note 3 about the garden, the ferns\"}\n".to_vec();
        let mut out = Vec::new();
        encode_payload_with(&plain, 3, Some(&d), &mut out);
        assert_eq!(out[0], FLAG_DICT);
        let mut plain_z = Vec::new();
        encode_payload(&plain, 3, &mut plain_z);
        assert!(out.len() < plain_z.len(), "the dictionary pays on a small text: {} vs {}", out.len(), plain_z.len());
        assert_eq!(dict_frame(&out, 1 << 20).unwrap(), (d.zstd_id, plain.len()));
        assert_eq!(decode_dict_payload(&out, plain.len(), &d).unwrap(), plain);
        assert!(decode_dict_payload(&out, plain.len() - 1, &d).is_err(), "limit enforced before decoding");
        let e = decode_payload(&out, 1 << 20).unwrap_err();
        assert!(e.contains("only blobs"), "{e}");
        // Prepared for two levels at most (the repository's, and one below it for database pages):
        // at a third, the dictionary is not used.
        let mut second = Vec::new();
        encode_payload_with(&plain, 2, Some(&d), &mut second);
        assert_eq!(second[0], FLAG_DICT);
        assert_eq!(decode_dict_payload(&second, plain.len(), &d).unwrap(), plain);
        let mut other = Vec::new();
        encode_payload_with(&plain.repeat(4), 5, Some(&d), &mut other);
        assert_eq!(other[0], FLAG_ZSTD);
        // A byte after the frame, and a frame that names no dictionary, are refused.
        let mut trailing = out.clone();
        trailing.push(0);
        assert!(dict_frame(&trailing, 1 << 20).is_err());
        let mut nodict = vec![FLAG_DICT];
        nodict.extend_from_slice(&zstd::bulk::compress(&plain, 3).unwrap());
        assert!(dict_frame(&nodict, 1 << 20).unwrap_err().contains("names no dictionary"));
        // Another dictionary with the frame's ID cannot decode it into the right bytes.
        let mut wrong = d.bytes().to_vec();
        // (All of its content, after the header and entropy tables.)
        // SAFETY: reads the dictionary's own bytes, within their length.
        let header = unsafe { zstd::zstd_safe::zstd_sys::ZDICT_getDictHeaderSize(wrong.as_ptr().cast(), wrong.len()) };
        assert!(header < wrong.len());
        wrong[header..].iter_mut().for_each(|b| *b = b'x');
        let wrong = Dict::from_bytes("w".into(), wrong).unwrap();
        assert_ne!(decode_dict_payload(&out, plain.len(), &wrong).ok(), Some(plain));
    }

    #[test]
    fn large_chunks_compress_with_the_dictionary_attached_and_leave_the_context_clean() {
        let d = trained();
        // Above 16 KiB, where zstd would copy the dictionary's tables: a frame of the same format.
        let line =
            |i: usize| format!("{{\"role\":\"user\",\"turn\":{i},\"content\":\"step {} of the plan\"}}\n", i * 7 % 13);
        let plain: Vec<u8> = (0..3000).flat_map(|i| line(i).into_bytes()).collect();
        assert!(plain.len() > 64 << 10);
        let mut out = Vec::new();
        encode_payload_with(&plain, 3, Some(&d), &mut out);
        assert_eq!(out[0], FLAG_DICT);
        assert_eq!(dict_frame(&out, 1 << 20).unwrap(), (d.zstd_id, plain.len()));
        assert_eq!(decode_dict_payload(&out, plain.len(), &d).unwrap(), plain);
        // The same thread's next plain compression names no dictionary and decodes alone.
        let mut z = Vec::new();
        encode_payload(&plain, 3, &mut z);
        assert_eq!(z[0], FLAG_ZSTD);
        assert_eq!(zstd::zstd_safe::get_dict_id_from_frame(&z[9..]), None);
        assert_eq!(decode_payload(&z, 1 << 20).unwrap(), plain);
        // And a dictionary dropped after use leaves nothing behind for the next one.
        drop(d);
        let d2 = trained();
        let mut again = Vec::new();
        encode_payload_with(&plain, 3, Some(&d2), &mut again);
        assert_eq!(decode_dict_payload(&again, plain.len(), &d2).unwrap(), plain);
    }

    #[test]
    fn sealed_objects_round_trip() {
        let keys = Keys::derive(&MasterKey([3; 32]));
        let s = seal_object(&keys, &[AAD_INDEX], b"abc", METADATA_LEVEL);
        assert_eq!(open_object(&keys, &[AAD_INDEX], &s, "index", "x", 100).unwrap(), b"abc");
    }
}
