//! The one encoding a reader accepts for a value (format-spec §9, §3, §4, §11): postcard in its
//! canonical form with nothing after it, and JSON with no key twice in an object. Every reader of a
//! repository object decodes through here, so no object is taken in a second encoding anywhere.

use serde::de::{DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

/// Decodes `bytes` as the postcard encoding of one `T` and refuses any other encoding than the one
/// a writer produces: bytes left after the value, or a varint longer than needed (postcard's
/// decoder takes `a4 83 00` for 420, whose encoding is `a4 03`). The value is encoded again and
/// compared with `bytes` as it goes, without a buffer: one pass, no allocation.
pub fn postcard<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let (value, rest) = postcard::take_from_bytes::<T>(bytes).map_err(|e| e.to_string())?;
    if !rest.is_empty() {
        return Err(format!("{} bytes after the encoded value", rest.len()));
    }
    match postcard::serialize_with_flavor(&value, Compare { want: bytes, at: 0 }) {
        Ok(n) if n == bytes.len() => Ok(value),
        _ => Err("not in canonical form (a varint longer than needed)".into()),
    }
}

/// A postcard output that writes nothing: it checks each byte against the expected encoding and
/// fails at the first difference.
struct Compare<'a> {
    want: &'a [u8],
    at: usize,
}

impl postcard::ser_flavors::Flavor for Compare<'_> {
    type Output = usize;

    #[inline]
    fn try_push(&mut self, b: u8) -> postcard::Result<()> {
        match self.want.get(self.at) {
            Some(&w) if w == b => {
                self.at += 1;
                Ok(())
            }
            _ => Err(postcard::Error::SerializeBufferFull),
        }
    }

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        // Most calls carry one varint (1 to 10 bytes): compared byte by byte, which is cheaper
        // than a call to memcmp; names and other byte strings with memcmp.
        let same = |w: &[u8]| if data.len() <= 16 { w.iter().zip(data).all(|(a, b)| a == b) } else { w == data };
        match self.want.get(self.at..self.at + data.len()) {
            Some(w) if same(w) => {
                self.at += data.len();
                Ok(())
            }
            _ => Err(postcard::Error::SerializeBufferFull),
        }
    }

    fn finalize(self) -> postcard::Result<usize> {
        Ok(self.at)
    }
}

/// Decodes one JSON document as a `T`, refusing a document in which an object has a key twice,
/// whether `T` knows the key or ignores it (serde only refuses the known ones).
pub fn json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let value = serde_json::from_slice::<T>(bytes).map_err(|e| e.to_string())?;
    serde_json::from_slice::<NoKeyTwice>(bytes).map_err(|e| e.to_string())?;
    Ok(value)
}

/// Any JSON value, read only to check that none of its objects has a key twice.
struct NoKeyTwice;

impl<'de> Deserialize<'de> for NoKeyTwice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoKeyTwice)
    }
}

impl<'de> Visitor<'de> for NoKeyTwice {
    type Value = NoKeyTwice;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self, A::Error> {
        while a.next_element::<NoKeyTwice>()?.is_some() {}
        Ok(self)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self, A::Error> {
        let mut seen = HashSet::new();
        while let Some(Key(k)) = a.next_key::<Key<'de>>()? {
            if seen.contains(&k) {
                return Err(serde::de::Error::custom(format!("key {k:?} twice in one object")));
            }
            a.next_value::<NoKeyTwice>()?;
            seen.insert(k);
        }
        Ok(self)
    }
}

/// An object's key, borrowed from the document when it holds no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct T {
        version: u8,
        mode: u32,
        size: u64,
        delta: i64,
        #[serde(with = "serde_bytes")]
        name: Vec<u8>,
        ids: Vec<[u8; 4]>,
        sub: Option<[u8; 2]>,
    }

    fn value() -> T {
        T { version: 1, mode: 0o644, size: u64::MAX, delta: -3, name: b"name".to_vec(), ids: vec![[9; 4]], sub: None }
    }

    #[test]
    fn postcard_takes_the_canonical_encoding_only() {
        let good = ::postcard::to_allocvec(&value()).unwrap();
        assert_eq!(good[..3], [1, 0xa4, 0x03], "version, then 0o644 = 420 as a4 03");
        assert_eq!(postcard::<T>(&good).unwrap(), value());

        let overlong = [&good[..1], &[0xa4, 0x83, 0x00], &good[3..]].concat();
        assert_eq!(::postcard::from_bytes::<T>(&overlong).unwrap(), value(), "postcard alone takes it");
        assert!(postcard::<T>(&overlong).unwrap_err().contains("not in canonical form"));

        let trailing = [&good[..], &[0]].concat();
        assert!(postcard::<T>(&trailing).unwrap_err().contains("1 bytes after"));

        // A zero length as 80 00 instead of 00 (the empty option is last: change `ids`'s count).
        let mut v = value();
        v.ids.clear();
        let empty = ::postcard::to_allocvec(&v).unwrap();
        let at = empty.len() - 2;
        assert_eq!(empty[at..], [0, 0], "no ids, no sub");
        let long_zero = [&empty[..at], &[0x80, 0x00], &empty[at..]].concat();
        assert!(postcard::<T>(&long_zero).is_err());

        assert!(postcard::<T>(&good[..good.len() - 1]).is_err(), "truncated");
        assert!(postcard::<T>(&[]).is_err());
    }

    #[derive(Debug, Deserialize)]
    struct J {
        version: u32,
        #[serde(default)]
        list: Vec<I>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct I {
        path: String,
    }

    #[test]
    fn json_refuses_a_key_twice_known_or_not() {
        assert_eq!(json::<J>(br#"{"version":1,"later":{"a":1,"b":[{"a":2}]}}"#).unwrap().version, 1);
        let j = json::<J>(br#"{"version":1,"list":[{"path":"/a","x":1},{"path":"/b","x":2}]}"#).unwrap();
        assert_eq!(j.list.len(), 2, "the same key in two objects is not twice");
        for dup in [
            &br#"{"version":1,"version":1}"#[..],
            br#"{"version":1,"later":1,"later":2}"#,
            br#"{"version":1,"later":{"a":1,"a":1}}"#,
            br#"{"version":1,"list":[{"path":"/a","x":1,"x":1}]}"#,
            br#"{"version":1,"l\u0061ter":1,"later":2}"#,
        ] {
            assert!(json::<J>(dup).is_err(), "{}", String::from_utf8_lossy(dup));
        }
        let e = json::<J>(br#"{"version":1,"later":1,"later":2}"#).unwrap_err();
        assert!(e.contains(r#"key "later" twice"#), "{e}");
        assert!(json::<J>(b"{").is_err());
    }
}
