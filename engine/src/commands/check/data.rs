//! `--read-data`: each chosen pack downloaded whole, its bytes checked against its name, its
//! header decoded and compared with the index, and every blob decrypted and verified
//! (authentication, length, keyed hash). Packs are read in parallel.

use super::subset::Subset;
use super::{why, Checker, Problem};
use crate::backend::ObjectName;
use crate::format::id::{BlobId, PackId};
use crate::format::pack::{self, PackEntry};

impl Checker<'_> {
    pub(super) fn read_data(&mut self, subset: Subset) {
        use rayon::prelude::*;
        let all: Vec<PackId> = self.stored.keys().copied().collect();
        let chosen = subset.select(&all);
        // Structure already counted the indexed packs; with --read-data the count is of packs read.
        self.report.packs_checked = chosen.len() as u64;
        let jobs: Vec<(PackId, Option<Vec<PackEntry>>)> =
            chosen.iter().map(|id| (*id, self.packs.get(id).map(|i| i.entries.clone()))).collect();
        let bytes_total = chosen.iter().map(|id| self.stored.get(id).copied().unwrap_or(0)).sum();
        self.progress.set_phase("read data", "packs", Some((chosen.len() as u64, bytes_total)));
        let results: Vec<PackResult> = jobs.par_iter().map(|(id, idx)| self.read_pack(id, idx.as_deref())).collect();
        for r in results {
            self.report.blobs_checked += r.blobs_checked;
            self.bad_copies.extend(r.bad.iter().map(|b| (*b, r.id)));
            self.report.errors.extend(r.errors);
        }
    }

    pub(super) fn read_pack(&self, id: &PackId, indexed: Option<&[PackEntry]>) -> PackResult {
        let mut r = PackResult { id: *id, blobs_checked: 0, bad: vec![], errors: vec![] };
        let read = self.repo.backend().read(&ObjectName::of(id));
        self.progress.add_done(1, self.stored.get(id).copied().unwrap_or(0));
        let bytes = match read {
            Ok(b) => b,
            Err(e) => {
                let lost: Vec<BlobId> = indexed.unwrap_or_default().iter().map(|e| e.id).collect();
                r.bad = lost.clone();
                r.errors.push(Problem::new("pack_read", format!("pack {id} cannot be read: {e}")).pack(id).blobs(lost));
                return r;
            }
        };
        let hash_ok = PackId::of_bytes(&bytes) == *id;
        let header = pack::header_of(self.repo.keys(), id, &bytes);
        let mut header_problem = None;
        let expected: Vec<PackEntry> = match (&header, indexed) {
            (Ok(h), Some(ix)) => {
                let mut a: Vec<PackEntry> = h.clone();
                let mut b: Vec<PackEntry> = ix.to_vec();
                a.sort_by_key(|e| (e.id, e.offset));
                b.sort_by_key(|e| (e.id, e.offset));
                if a != b {
                    header_problem = Some(
                        Problem::new("pack_index_mismatch", format!("pack {id}: its header and the index disagree"))
                            .pack(id),
                    );
                }
                ix.to_vec()
            }
            (Ok(h), None) => h.clone(),
            (Err(e), ix) => {
                header_problem =
                    Some(Problem::new("pack_header", format!("pack {id}: header unreadable: {e}")).pack(id));
                ix.unwrap_or_default().to_vec()
            }
        };
        for e in &expected {
            r.blobs_checked += 1;
            let end = e.offset as u64 + e.length as u64;
            let res = if end > bytes.len() as u64 {
                Err("beyond the end of the pack".to_string())
            } else {
                self.repo
                    .decode_blob(e.ty, &e.id, &bytes[e.offset as usize..end as usize], e.raw_length as usize)
                    .map(|_| ())
                    .map_err(|x| why(&x))
            };
            if let Err(why) = res {
                r.bad.push(e.id);
                r.errors.push(
                    Problem::new("blob", format!("{} blob {} in pack {id}: {why}", e.ty.name(), e.id))
                        .pack(id)
                        .blob(&e.id)
                        .blobs(vec![e.id]),
                );
            }
        }
        if !hash_ok {
            let n = r.bad.len();
            let p = Problem::new(
                "pack_hash",
                format!("pack {id}: content does not match its name ({n} of {} blobs damaged)", expected.len()),
            )
            .pack(id)
            .blobs(r.bad.clone());
            r.errors.insert(0, p);
        }
        if let Some(mut p) = header_problem {
            p.blobs = r.bad.clone();
            r.errors.insert(0, p);
        }
        r
    }
}

pub(super) struct PackResult {
    id: PackId,
    blobs_checked: u64,
    bad: Vec<BlobId>,
    errors: Vec<Problem>,
}
