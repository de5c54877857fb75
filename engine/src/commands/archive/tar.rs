//! Reading an archive's tar stream without trusting it: gzip or plain tar, PAX and GNU long-name
//! headers of bounded size, and entry paths split into safe relative components (no `..`, no
//! absolute path, no NUL, no name over 255 bytes).

use super::bad;
use crate::error::Result;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};

/// Largest PAX or GNU long-name header accepted.
pub(super) const MAX_EXT_HEADER: u64 = 1 << 20;
/// Longest entry path (after the archive root) and symlink target accepted, in bytes.
pub(super) const MAX_PATH: usize = 4096;
/// Longest single name.
pub(super) const MAX_NAME: usize = 255;

/// Splits an archive path into components: relative, no `..`, no NUL; `.` and empty components
/// (a trailing slash) dropped.
pub(super) fn split_path(p: &[u8]) -> Result<Vec<&[u8]>> {
    if p.first() == Some(&b'/') {
        return Err(bad(format!("absolute entry path {:?}", String::from_utf8_lossy(p))));
    }
    if p.contains(&0) {
        return Err(bad("entry path with a NUL byte"));
    }
    let mut out = Vec::new();
    for c in p.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(bad(format!("entry path with `..`: {:?}", String::from_utf8_lossy(p)))),
            c if c.len() > MAX_NAME => return Err(bad("entry name longer than 255 bytes")),
            c => out.push(c),
        }
    }
    if out.is_empty() {
        return Err(bad("empty entry path"));
    }
    Ok(out)
}

/// Parses PAX extended-header records (`<len> <key>=<value>\n`); values may hold any byte.
pub(super) fn parse_pax(data: &[u8]) -> Result<HashMap<String, Vec<u8>>> {
    let mut out = HashMap::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.iter().all(|&b| b == 0) {
            break;
        }
        let sp = rest.iter().position(|&b| b == b' ').ok_or_else(|| bad("malformed PAX header"))?;
        let len: usize = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|&l| l > sp + 1 && l <= rest.len())
            .ok_or_else(|| bad("malformed PAX header length"))?;
        let rec = &rest[sp + 1..len];
        let rec = rec.strip_suffix(b"\n").ok_or_else(|| bad("PAX record not ended by a newline"))?;
        let eq = rec.iter().position(|&b| b == b'=').ok_or_else(|| bad("PAX record without `=`"))?;
        let key = String::from_utf8_lossy(&rec[..eq]).into_owned();
        out.insert(key, rec[eq + 1..].to_vec());
        rest = &rest[len..];
    }
    Ok(out)
}

pub(super) fn read_bounded<R: Read>(r: &mut R, size: u64, max: u64, what: &str) -> Result<Vec<u8>> {
    if size > max {
        return Err(bad(format!("{what} of {size} bytes (at most {max} accepted)")));
    }
    let mut v = Vec::with_capacity(size as usize);
    r.take(max + 1).read_to_end(&mut v).map_err(|e| bad(format!("reading {what}: {e}")))?;
    if v.len() as u64 != size {
        return Err(bad(format!("{what} is truncated")));
    }
    Ok(v)
}

/// Opens an archive stream: gzip if it starts with gzip's magic bytes, plain tar otherwise.
pub(super) fn decompress<'r, R: Read + 'r>(r: R) -> Result<Box<dyn Read + 'r>> {
    let mut br = BufReader::with_capacity(1 << 20, r);
    let head = br.fill_buf().map_err(|e| bad(format!("cannot read the archive: {e}")))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(br)))
    } else {
        Ok(Box::new(br))
    }
}

pub(super) fn num<T: std::str::FromStr>(pax: &HashMap<String, Vec<u8>>, k: &str) -> Option<T> {
    pax.get(k).and_then(|v| std::str::from_utf8(v).ok()).and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_parse_with_any_bytes() {
        let data =
            crate::commands::dump::pax_records([("path", &b"a\nb"[..]), ("mtime", b"1.5"), ("CLAWBACK.ino", b"42")]);
        let m = parse_pax(&data).unwrap();
        assert_eq!(m["path"], b"a\nb");
        assert_eq!(m["mtime"], b"1.5");
        assert_eq!(m["CLAWBACK.ino"], b"42");
        assert!(parse_pax(b"99 path=x\n").is_err());
        assert!(parse_pax(b"5 p=x").is_err());
    }
}
