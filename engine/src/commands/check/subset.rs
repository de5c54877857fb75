//! Which packs `check --read-data-subset` downloads: a group `n/m` by the first byte of the pack
//! id, as restic chooses them, or a percentage chosen at random.

use crate::error::{Error, Result};
use crate::format::id::PackId;

/// Which packs `--read-data` downloads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Subset {
    All,
    /// Group `n` (1-based) of `m`: packs whose id's first byte is `n-1` modulo `m`, as restic does.
    Bucket {
        n: u32,
        m: u32,
    },
    /// This percentage of the packs, chosen at random.
    Percent(f64),
}

impl Subset {
    /// `n/m` or `P%`.
    pub fn parse(s: &str) -> Result<Subset> {
        let bad = |why: &str| Error::Usage(format!("--read-data-subset {s:?}: {why} (give n/m or P%)"));
        if let Some(p) = s.strip_suffix('%') {
            let v: f64 = p.trim().parse().map_err(|_| bad("not a percentage"))?;
            if !(v > 0.0 && v <= 100.0) {
                return Err(bad("the percentage must be above 0 and at most 100"));
            }
            return Ok(Subset::Percent(v));
        }
        let (n, m) = s.split_once('/').ok_or_else(|| bad("not n/m"))?;
        let n: u32 = n.trim().parse().map_err(|_| bad("n is not a number"))?;
        let m: u32 = m.trim().parse().map_err(|_| bad("m is not a number"))?;
        if m == 0 || m > 256 {
            return Err(bad("m must be between 1 and 256"));
        }
        if n == 0 || n > m {
            return Err(bad("n must be between 1 and m"));
        }
        Ok(Subset::Bucket { n, m })
    }

    /// The packs of `all` (sorted by id) this subset selects.
    pub fn select(&self, all: &[PackId]) -> Vec<PackId> {
        match *self {
            Subset::All => all.to_vec(),
            Subset::Bucket { n, m } => all.iter().filter(|p| p.0[0] as u32 % m == n - 1).copied().collect(),
            Subset::Percent(pct) => {
                use rand::seq::IndexedRandom;
                let k = ((all.len() as f64 * pct / 100.0).ceil() as usize).min(all.len());
                let mut v: Vec<PackId> = all.choose_multiple(&mut rand::rng(), k).copied().collect();
                v.sort();
                v
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn subsets() {
        assert_eq!(Subset::parse("2/5").unwrap(), Subset::Bucket { n: 2, m: 5 });
        assert_eq!(Subset::parse("10%").unwrap(), Subset::Percent(10.0));
        for bad in ["0/5", "6/5", "1/0", "1/300", "0%", "101%", "x", "1/x"] {
            assert!(Subset::parse(bad).is_err(), "{bad}");
        }
        let all: Vec<PackId> = (0..=255u8).map(|b| PackId([b; 32])).collect();
        // The m groups partition the packs, deterministically by the first byte of the id.
        let mut seen = BTreeSet::new();
        for n in 1..=3 {
            let s = Subset::Bucket { n, m: 3 }.select(&all);
            assert!(s.iter().all(|p| p.0[0] as u32 % 3 == n - 1));
            for p in s {
                assert!(seen.insert(p));
            }
        }
        assert_eq!(seen.len(), 256);
        assert_eq!(Subset::Percent(10.0).select(&all).len(), 26);
        assert_eq!(Subset::Percent(100.0).select(&all), all);
        assert_eq!(Subset::All.select(&all).len(), 256);
    }
}
