//! Condemned records: objects in `condemned/` that list the packs a prune means to delete, written
//! in two stages around a listing of the live backup leases ([`crate::repo::lease`]). A pack is
//! deleted only once no lease its record names is live, and every reader treats condemned packs as
//! readable but not for reuse. The protocol: format-spec/README.md, "Prune, leases and condemned
//! packs".

use crate::backend::name::CondemnedName;
use crate::backend::{Backend, Kind, ObjectName};
use crate::error::{Error, Result};
use crate::format::id::{IdSet, PackId, RecordId};
use crate::repo::lease::live_backup_leases;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// A condemned record, `condemned/<id>-<stage>`: stage 0 is written before the live backup
/// leases are listed (`leases` is None), stage 1 after, with them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CondemnedRecord {
    pub version: u32,
    /// 16 hex digits, shared by both stages.
    pub id: String,
    /// RFC 3339, when the prune condemned the packs.
    pub time: String,
    pub packs: Vec<PackId>,
    /// The backup leases live just after stage 0 was written; None in stage 0.
    pub leases: Option<Vec<String>>,
}

/// Every condemned record, one per id (the final stage when both are there), with the object
/// names holding it.
pub fn list_condemned(backend: &dyn Backend) -> Result<Vec<(CondemnedRecord, Vec<ObjectName>)>> {
    let mut by_id: std::collections::BTreeMap<RecordId, (Option<CondemnedRecord>, Vec<ObjectName>)> =
        Default::default();
    for (name, _) in backend.list(Kind::Condemned).map_err(Error::backend_err("list", "condemned"))? {
        let Some(CondemnedName { id, .. }) = name.id::<CondemnedName>() else { continue };
        let bytes = match backend.read(&name) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::Backend { op: "read", name: name.to_string(), source: e }),
        };
        let rec: CondemnedRecord =
            serde_json::from_slice(&bytes).map_err(|e| Error::corrupt("condemned record", &name, e))?;
        let slot = by_id.entry(id).or_default();
        slot.1.push(name);
        if slot.0.as_ref().is_none_or(|r| r.leases.is_none()) {
            slot.0 = Some(rec);
        }
    }
    Ok(by_id.into_values().filter_map(|(r, names)| r.map(|r| (r, names))).collect())
}

/// The packs every condemned record lists.
pub fn condemned_packs(backend: &dyn Backend) -> Result<IdSet<PackId>> {
    Ok(list_condemned(backend)?.into_iter().flat_map(|(r, _)| r.packs).collect())
}

/// Writes a record's stage 0, lists the live backup leases, writes stage 1 with them and removes
/// stage 0. Returns the final record.
pub fn condemn(
    backend: &dyn Backend,
    packs: Vec<PackId>,
    mut after_stage0: impl FnMut() -> Result<()>,
) -> Result<CondemnedRecord> {
    let id = RecordId::random();
    let mut rec = CondemnedRecord { version: 1, id: id.to_hex(), time: Utc::now().to_rfc3339(), packs, leases: None };
    let n0 = ObjectName::of(&CondemnedName { id, final_stage: false });
    backend
        .write(&n0, &serde_json::to_vec(&rec).unwrap())
        .map_err(Error::backend_err("write condemned record", &n0))?;
    after_stage0()?;
    finalize(backend, &mut rec, &[n0])?;
    Ok(rec)
}

/// Gives a stage-0 record its lease list (the backup leases live now: any backup that loaded its
/// index before stage 0 was written and has not finished still holds one) and removes `old`.
/// Returns the name of the final stage.
pub fn finalize(backend: &dyn Backend, rec: &mut CondemnedRecord, old: &[ObjectName]) -> Result<ObjectName> {
    let id = RecordId::from_hex(&rec.id)
        .ok_or_else(|| Error::corrupt("condemned record", &rec.id, "its id is not 16 lowercase hex digits"))?;
    rec.leases = Some(live_backup_leases(backend)?);
    let n1 = ObjectName::of(&CondemnedName { id, final_stage: true });
    match backend.write(&n1, &serde_json::to_vec(&rec).unwrap()) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        r => r.map_err(Error::backend_err("write condemned record", &n1))?,
    }
    for n in old.iter().filter(|n| **n != n1) {
        let _ = backend.delete(n);
    }
    Ok(n1)
}

/// Leases recorded with `rec` that are still live, from `live`.
pub fn waiting_on<'a>(rec: &'a CondemnedRecord, live: &HashSet<String>) -> Vec<&'a String> {
    rec.leases.iter().flatten().filter(|l| live.contains(*l)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::local::LocalBackend;
    use crate::format::id::PackId;
    use crate::repo::lease::Lease;
    use std::sync::Arc;

    #[test]
    fn condemned_records_stage_and_merge() {
        let d = tempfile::tempdir().unwrap();
        let b: Arc<dyn Backend> = Arc::new(LocalBackend::new(d.path().join("r")));
        b.create().unwrap();
        let l = Lease::backup(b.clone()).unwrap();
        let pack = PackId([7; 32]);
        let rec = condemn(b.as_ref(), vec![pack], || {
            assert_eq!(list_condemned(b.as_ref()).unwrap()[0].0.leases, None);
            Ok(())
        })
        .unwrap();
        assert_eq!(rec.leases, Some(vec![l.id().to_string()]));
        let all = list_condemned(b.as_ref()).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].1.iter().map(|n| n.to_string()).collect::<Vec<_>>(), vec![format!("{}-1", rec.id)]);
        assert!(condemned_packs(b.as_ref()).unwrap().contains(&pack));
        l.release();
    }
}
