//! The repository's snapshots: saved (counting their own bytes), listed through the local cache,
//! read and checked, and selected the way every command that takes a SNAPSHOT selects them
//! (`latest`, `latest~N`, an id or a prefix, among the snapshots a filter lets through).

use super::{unique_by_prefix, Repository};
use crate::backend::{Kind, ObjectName};
use crate::error::{Error, Result};
use crate::format::codec;
use crate::format::id::SnapshotId;
use crate::format::snapshot::{Filter, Snapshot, PRE_RESTORE_TAG};

impl Repository {
    pub fn save_snapshot(&self, s: &Snapshot) -> Result<SnapshotId> {
        self.store_snapshot(s, s.encode(&self.keys))
    }

    fn store_snapshot(&self, s: &Snapshot, bytes: Vec<u8>) -> Result<SnapshotId> {
        let id = SnapshotId::of_bytes(&bytes);
        let name = ObjectName::of(&id);
        self.backend.write(&name, &bytes).map_err(Error::backend_err("write snapshot", &name))?;
        if let Some(c) = &self.cache {
            c.put_snapshot(name.as_str(), &serde_json::to_vec(s).unwrap())?;
        }
        Ok(id)
    }

    /// Saves a snapshot whose `summary.bytes_stored` also counts the snapshot object itself. The
    /// encoded length moves with the digits of the number it holds, so iterate to the fixed point.
    /// Compressed, the length need not move monotonically and may have no fixed point; stored raw
    /// it grows with the digits only, so the second pass always settles.
    pub fn save_snapshot_counting_itself(&self, s: &mut Snapshot) -> Result<SnapshotId> {
        let base = s.summary.bytes_stored;
        for level in [codec::METADATA_LEVEL, 0] {
            let mut own = 0u64;
            for _ in 0..8 {
                s.summary.bytes_stored = base + own;
                let bytes = s.encode_level(&self.keys, level);
                if bytes.len() as u64 == own {
                    return self.store_snapshot(s, bytes);
                }
                own = bytes.len() as u64;
            }
        }
        self.save_snapshot(s)
    }

    /// Deletes a snapshot object and its cache entry (already gone: fine). Its data stays until
    /// prune.
    pub fn remove_snapshot(&self, id: &SnapshotId) -> Result<()> {
        let name = ObjectName::of(id);
        match self.backend.delete(&name) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Backend { op: "delete snapshot", name: name.to_string(), source }),
        }
        if let Some(c) = &self.cache {
            c.remove_snapshot(name.as_str())?;
        }
        Ok(())
    }

    /// Replaces the snapshot `old` by `new` (tag, rewrite): the new object is written before the
    /// old one is deleted, so a crash between leaves both, never neither.
    pub fn replace_snapshot(&self, old: &SnapshotId, new: &Snapshot) -> Result<SnapshotId> {
        let id = self.save_snapshot(new)?;
        if id != *old {
            self.remove_snapshot(old)?;
        }
        Ok(id)
    }

    /// Every snapshot, oldest first (ties broken by id).
    pub fn snapshots(&self) -> Result<Vec<(SnapshotId, Snapshot)>> {
        let remote = self.backend.list(Kind::Snapshot).map_err(Error::backend_err("list", "snapshots"))?;
        let mut cached: std::collections::HashMap<String, Vec<u8>> = match &self.cache {
            Some(c) => c.snapshots()?.into_iter().collect(),
            None => Default::default(),
        };
        let remote_names: std::collections::HashSet<&str> = remote.iter().map(|(n, _)| n.as_str()).collect();
        if let Some(c) = &self.cache {
            for k in cached.keys().filter(|k| !remote_names.contains(k.as_str())) {
                c.remove_snapshot(k)?;
            }
        }
        let mut out = Vec::with_capacity(remote.len());
        for (name, _) in &remote {
            let Some(id) = name.id::<SnapshotId>() else {
                continue;
            };
            let snap = match cached.remove(name.as_str()) {
                Some(json) => Snapshot::from_json(name.as_str(), &json)?,
                None => {
                    let s = match self.read_snapshot(name) {
                        // Forgotten by another process since the listing: it is not a snapshot any more.
                        Err(Error::Backend { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => continue,
                        r => r?,
                    };
                    if let Some(c) = &self.cache {
                        c.put_snapshot(name.as_str(), &serde_json::to_vec(&s).unwrap())?;
                    }
                    s
                }
            };
            out.push((id, snap));
        }
        out.sort_by(|a, b| a.1.time().cmp(&b.1.time()).then(a.0.cmp(&b.0)));
        Ok(out)
    }

    /// Reads and decodes the snapshot object `name`, checking its name against its content.
    pub fn read_snapshot(&self, name: &ObjectName) -> Result<Snapshot> {
        let bytes = self.backend.read(name).map_err(Error::backend_err("read", name))?;
        if name.id::<SnapshotId>() != Some(SnapshotId::of_bytes(&bytes)) {
            return Err(Error::corrupt("snapshot", name, "content does not match its name"));
        }
        Snapshot::decode(&self.keys, name.as_str(), &bytes)
    }

    /// Resolves `latest` (`latest~N`: the N-th before it, as rustic writes it), a full id or a
    /// unique prefix of at least 4 hex digits, among snapshots that pass `filter`.
    pub fn find_snapshot(&self, spec: &str, filter: impl Fn(&Snapshot) -> bool) -> Result<(SnapshotId, Snapshot)> {
        let all = self.snapshots()?;
        if let Some(rest) = spec.strip_prefix("latest") {
            let back: usize = match rest.strip_prefix('~') {
                None if rest.is_empty() => 0,
                Some(n) => n.parse().map_err(|_| {
                    Error::Usage(format!("invalid snapshot {spec:?}: write latest~N with N a whole number"))
                })?,
                None => {
                    return Err(Error::Usage(format!(
                        "invalid snapshot {spec:?}: give `latest`, `latest~N`, an id or at least 4 hex digits"
                    )))
                }
            };
            return all
                .into_iter()
                .rev()
                .filter(|(_, s)| filter(s))
                .nth(back)
                .ok_or_else(|| Error::SnapshotNotFound(spec.into()));
        }
        if spec.len() < 4 || !spec.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Usage(format!(
                "invalid snapshot {spec:?}: give `latest`, an id or at least 4 hex digits"
            )));
        }
        match unique_by_prefix(all, &spec.to_ascii_lowercase(), |(id, _)| id.to_hex()) {
            Ok(found) => Ok(found),
            Err(0) => Err(Error::SnapshotNotFound(spec.into())),
            Err(_) => Err(Error::AmbiguousSnapshot(spec.into())),
        }
    }

    /// The newest snapshot of a backup set: the same host and the same paths, in the same order
    /// (the parent a backup compares its files against).
    pub fn latest_of_set(&self, host: &str, paths: &[String]) -> Result<Option<(SnapshotId, Snapshot)>> {
        Ok(self.snapshots()?.into_iter().rev().find(|(_, s)| s.hostname == host && s.paths == paths))
    }

    /// The snapshots `filter` selects, oldest first.
    pub fn snapshots_matching(&self, filter: &Filter) -> Result<Vec<(SnapshotId, Snapshot)>> {
        Ok(self.snapshots()?.into_iter().filter(|(_, s)| filter.matches(s)).collect())
    }

    /// Resolves SNAPSHOT (`latest`, `latest~N`, an id or a prefix) among the snapshots `filter`
    /// and `also` let through, as every command that takes a SNAPSHOT does. `latest` is the latest
    /// backup: the safety snapshots in-place restores take (tag `pre-restore`) are passed over
    /// unless the filter's tags name them; an id or prefix names any snapshot. When `latest`
    /// matches nothing, the error names the filter, and says when only safety snapshots match.
    pub fn select_snapshot(
        &self,
        spec: &str,
        filter: &Filter,
        also: impl Fn(&Snapshot) -> bool,
    ) -> Result<(SnapshotId, Snapshot)> {
        let safety_too = filter.names_pre_restore();
        let pick = |s: &Snapshot| filter.matches(s) && also(s);
        self.find_snapshot(spec, |s| pick(s) && (safety_too || !s.is_pre_restore())).map_err(|e| match e {
            Error::SnapshotNotFound(what) => {
                let with = if filter.is_empty() { String::new() } else { format!(" with {}", describe(filter)) };
                let only_safety = spec.starts_with("latest")
                    && !safety_too
                    && self.snapshots().is_ok_and(|all| {
                        let mut picked = all.iter().filter(|(_, s)| pick(s));
                        picked.clone().next().is_some() && picked.all(|(_, s)| s.is_pre_restore())
                    });
                let hint = if only_safety {
                    format!(
                        " (only {PRE_RESTORE_TAG} safety snapshots match, which `latest` passes over; \
                         give one's id or add --tag {PRE_RESTORE_TAG})"
                    )
                } else {
                    String::new()
                };
                Error::SnapshotNotFound(format!("{what}{with}{hint}"))
            }
            e => e,
        })
    }
}

/// A filter as the command-line flags that make it (`--host h --tag a,b`), for messages.
fn describe(f: &Filter) -> String {
    let mut v = Vec::new();
    v.extend(f.hosts.iter().map(|h| format!("--host {h}")));
    v.extend(f.tags.iter().map(|t| format!("--tag {}", t.join(","))));
    v.extend(f.paths.iter().map(|p| format!("--path {p}")));
    v.extend(f.group.iter().map(|g| format!("--group {g}")));
    v.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::tests::repo;

    fn snap(host: &str, day: u32, tags: &[&str]) -> Snapshot {
        let mut s = Snapshot::for_test(host, &["/p"], &format!("2026-01-{day:02}T10:00:00Z"));
        s.tags = tags.iter().map(|t| t.to_string()).collect();
        s
    }

    #[test]
    fn latest_passes_over_safety_snapshots_unless_asked() {
        let d = tempfile::tempdir().unwrap();
        let r = repo(d.path());
        let backup = r.save_snapshot(&snap("a", 1, &[])).unwrap();
        let safety = r.save_snapshot(&snap("a", 2, &[PRE_RESTORE_TAG])).unwrap();
        let other = r.save_snapshot(&snap("b", 3, &[])).unwrap();
        let all = Filter::default();
        assert_eq!(r.select_snapshot("latest", &all, |_| true).unwrap().0, other);
        let host_a = Filter { hosts: vec!["a".into()], ..Default::default() };
        assert_eq!(
            r.select_snapshot("latest", &host_a, |_| true).unwrap().0,
            backup,
            "the safety snapshot is passed over"
        );
        let asked = Filter { tags: vec![vec![PRE_RESTORE_TAG.into()]], ..host_a.clone() };
        assert_eq!(r.select_snapshot("latest", &asked, |_| true).unwrap().0, safety);
        // An id names any snapshot, the safety snapshot included.
        assert_eq!(r.select_snapshot(&safety.to_hex()[..8], &host_a, |_| true).unwrap().0, safety);
        assert_eq!(r.snapshots_matching(&host_a).unwrap().len(), 2);
        // A backup's parent: the newest of the same host and paths, whatever its tags.
        assert_eq!(r.latest_of_set("a", &["/p".into()]).unwrap().unwrap().0, safety);
        assert!(r.latest_of_set("a", &["/q".into()]).unwrap().is_none());

        // Nothing matches: the error names the filter.
        let none = Filter { hosts: vec!["c".into()], tags: vec![vec!["x".into(), "y".into()]], ..Default::default() };
        let e = r.select_snapshot("latest", &none, |_| true).unwrap_err().to_string();
        assert_eq!(e, "snapshot latest with --host c --tag x,y not found");
        // Only safety snapshots match: the error says how to pick one.
        let e = r.select_snapshot("latest", &host_a, |s| s.time().format("%d").to_string() == "02").unwrap_err();
        assert!(e.to_string().contains("only pre-restore safety snapshots match"), "{e}");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn objects_and_snapshots_are_found_by_unique_prefix() {
        let d = tempfile::tempdir().unwrap();
        let r = repo(d.path());
        let ids: Vec<SnapshotId> = (1..=20).map(|day| r.save_snapshot(&snap("a", day, &[])).unwrap()).collect();
        let id = ids[0].to_hex();
        assert_eq!(r.find_object(Kind::Snapshot, &id[..10].to_ascii_uppercase()).unwrap(), ObjectName::of(&ids[0]));
        assert!(matches!(r.find_object(Kind::Snapshot, "zz"), Err(Error::Missing { .. })));
        assert_eq!(r.find_object(Kind::Snapshot, "").unwrap_err().exit_code(), 2, "every name matches");
        assert_eq!(r.find_snapshot(&id[..6], |_| true).unwrap().0, ids[0]);
        let first = |i: &SnapshotId| i.to_hex()[..1].to_string();
        // 20 ids, 16 first digits: two share one.
        let shared = ids.iter().find(|a| ids.iter().filter(|b| first(b) == first(a)).count() > 1).map(first).unwrap();
        assert!(matches!(r.find_object(Kind::Snapshot, &shared), Err(Error::Usage(_))));
        assert!(matches!(r.find_snapshot("abc", |_| true), Err(Error::Usage(_))), "fewer than 4 digits");
        assert_eq!(r.read_snapshot(&ObjectName::of(&ids[0])).unwrap().time, "2026-01-01T10:00:00Z");
    }
}
