//! Parts of OpenClaw's state that live as rows inside a shared SQLite database (SQLite era,
//! OpenClaw 2026.x): one session inside an agent's `openclaw-agent.sqlite`, the cron jobs inside
//! `state/openclaw.sqlite`, auth profiles in either. Restoring such a part replaces only its rows,
//! so everything else in the database (other sessions, the memory index, other gateway state) stays
//! as it is on disk; restoring the whole file would roll all of that back too.
//!
//! A *unit* is one row of a root table (a session: `session_nodes`; a cron job: `cron_jobs`) with
//! every row that hangs off it: the rows of sibling tables keyed the same way, and the rows that
//! reach it through `FOREIGN KEY ... ON DELETE CASCADE` chains, read from the database's own schema
//! (for a session: its windows, transcript events, event identities, participants, ...). That is
//! exactly what OpenClaw itself removes when it deletes the session, so a unit is a session as
//! OpenClaw sees it, whatever tables a later release adds.
//!
//! A merge takes the snapshot's image of the database (attached read-only) and, in one
//! transaction with deferred foreign keys: compares each unit with the one on disk (identical:
//! left alone), deletes the disk's unit (the cascade removes its dependent rows) and copies the
//! snapshot's rows; parents outside the unit that its rows refer to (a conversation) are copied when
//! missing; with `delete`, units on disk the snapshot lacks go. A foreign key left dangling fails the
//! commit and nothing changes. Both files must have the same schema version (`PRAGMA
//! user_version`): rows are never moved across OpenClaw's schema migrations.
//!
//! Derived rows are not copied but left for OpenClaw to rebuild: a session's transcript search
//! index (`session_transcript_index_state` is dropped with the old unit, and a transcript without
//! index state is one OpenClaw re-indexes, as after its own `doctor --session-sqlite import`), and
//! inputs still queued for a run (`session_pending_inputs`), which would run again.
//!
//! For a restore into a folder ([`export`]) the units are written in OpenClaw's file-era formats,
//! which OpenClaw's doctor imports: a session as `<sessionId>.jsonl` (one transcript event a line,
//! exactly as stored) plus its `sessions.json` entry, cron jobs as `cron/jobs.json`, auth profiles
//! as `auth-profiles.json` / `auth-state.json`.

use crate::error::{Error, Result};
use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, OpenFlags};
use serde_json::{Map, Value as Json};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What kind of unit a [`RowSet`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RowKind {
    /// A session in an agent's database: `session_nodes` by `session_key`.
    Session,
    /// A cron job in the state database: `cron_jobs` by `(store_key, job_id)`.
    CronJob,
    /// An agent's auth profiles document: `auth_profile_store` by `store_key`.
    AuthProfiles,
    /// An agent's auth profile runtime state: `auth_profile_state` by `state_key`.
    AuthState,
    /// The shared auth profiles in the state database: `config_machine_state` rows
    /// `authProfiles.store` and `authProfiles.state`.
    SharedAuth,
    /// File era: entries of a `sessions.json` (a JSON object keyed by session key), not SQLite.
    SessionEntry,
}

/// How a kind's units are stored.
struct Spec {
    table: &'static str,
    key: &'static [&'static str],
    /// The column [`RowSet::keys`] select on.
    select: &'static str,
    /// Extras (with `delete`) are looked for only among rows whose value here is one the snapshot's
    /// units have or one of [`RowSet::within`].
    scope: Option<&'static str>,
    /// Tables keyed by the same columns, part of the unit.
    siblings: &'static [&'static str],
    /// Cascade children not copied (derived or transient; see the module docs).
    skip: &'static [&'static str],
    /// Tables whose content OpenClaw validated the units against; a unit copied as validated is
    /// valid only while these are the same on disk as in the snapshot.
    context: &'static [&'static str],
    /// How a unit is named in messages (an SQL expression over the root table).
    label: &'static str,
    /// What one unit is called.
    noun: &'static str,
}

impl RowKind {
    fn spec(self) -> &'static Spec {
        match self {
            RowKind::Session => &Spec {
                table: "session_nodes",
                key: &["session_key"],
                select: "session_key",
                scope: None,
                // OpenClaw's triggers mark a session row written outside its validation
                // (`entry_valid = 0`, a pending-validation row); the copied unit takes the
                // snapshot's validation state, which holds under the same key contract.
                siblings: &["session_canonical_validation_pending"],
                skip: &["session_transcript_index_state", "session_pending_inputs"],
                context: &["session_key_contract"],
                label: "session_key",
                noun: "session",
            },
            RowKind::CronJob => &Spec {
                table: "cron_jobs",
                key: &["store_key", "job_id"],
                select: "job_id",
                scope: Some("store_key"),
                siblings: &["cron_job_scratch"],
                skip: &[],
                context: &[],
                label: "name || ' (' || job_id || ')'",
                noun: "cron job",
            },
            RowKind::AuthProfiles => &Spec {
                table: "auth_profile_store",
                key: &["store_key"],
                select: "store_key",
                scope: None,
                siblings: &[],
                skip: &[],
                context: &[],
                label: "store_key",
                noun: "auth profiles",
            },
            RowKind::AuthState => &Spec {
                table: "auth_profile_state",
                key: &["state_key"],
                select: "state_key",
                scope: None,
                siblings: &[],
                skip: &[],
                context: &[],
                label: "state_key",
                noun: "auth profile state",
            },
            RowKind::SharedAuth => &Spec {
                table: "config_machine_state",
                key: &["state_key"],
                select: "state_key",
                scope: None,
                siblings: &[],
                skip: &[],
                context: &[],
                label: "state_key",
                noun: "shared auth",
            },
            RowKind::SessionEntry => &Spec {
                table: "sessions.json",
                key: &[],
                select: "",
                scope: None,
                siblings: &[],
                skip: &[],
                context: &[],
                label: "",
                noun: "session entry",
            },
        }
    }

    /// What one unit is called in messages (`session`, `cron job`).
    pub fn noun(self) -> &'static str {
        self.spec().noun
    }

    /// The table its units are rows of.
    pub fn table(self) -> &'static str {
        self.spec().table
    }
}

/// The config rows that hold the shared auth profiles (`src/agents/auth-profiles/sqlite-json.ts`).
pub const SHARED_AUTH_KEYS: [&str; 2] = ["authProfiles.store", "authProfiles.state"];

/// Units of one kind in one database (or one `sessions.json`), as a restore selects them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowSet {
    /// The database (or `sessions.json`), by its absolute path in the snapshot and on disk.
    pub db: PathBuf,
    pub kind: RowKind,
    /// Only the units whose selecting column (session key, job id, row key) is one of these;
    /// empty: every unit.
    pub keys: Vec<String>,
    /// Kinds with a scope (cron: the store key): where extras are looked for besides the scopes the
    /// snapshot's units have.
    pub within: Vec<String>,
    /// Where the file-era files of these units go (a restore into a folder writes them there):
    /// the agent's `sessions/` folder, `<state>/cron`, the agent dir.
    pub files_dir: PathBuf,
}

/// What a merge does to one unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RowAction {
    Create,
    Update,
    Delete,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowChange {
    pub kind: RowKind,
    /// The unit's name (session key, `name (job id)`, row key).
    pub label: String,
    pub action: RowAction,
}

/// What a merge found (and, unless planning only, did).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergeReport {
    pub changes: Vec<RowChange>,
    /// Units identical on disk, left alone.
    pub unchanged: u64,
}

fn q(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn sql_err(what: &str, db: &Path, e: rusqlite::Error) -> Error {
    Error::Other(format!("{what} {}: {e}", db.display()))
}

/// Opens the database on disk for a merge, with the snapshot's image attached read-only as `snap`.
fn open_pair(live: &Path, image: &Path) -> Result<Connection> {
    let c = Connection::open_with_flags(live, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_URI)
        .map_err(|e| sql_err("open", live, e))?;
    c.busy_timeout(Duration::from_secs(10)).map_err(|e| sql_err("open", live, e))?;
    c.execute_batch("PRAGMA foreign_keys = ON").map_err(|e| sql_err("open", live, e))?;
    let uri = format!("file:{}?mode=ro", uri_path(image));
    c.execute("ATTACH DATABASE ?1 AS snap", [&uri]).map_err(|e| sql_err("open the snapshot's copy of", live, e))?;
    let v = |schema: &str| -> Result<i64> {
        c.query_row(&format!("PRAGMA {schema}.user_version"), [], |r| r.get(0))
            .map_err(|e| sql_err("read the schema version of", live, e))
    };
    let (on_disk, in_snap) = (v("main")?, v("snap")?);
    if on_disk != in_snap {
        return Err(Error::Usage(format!(
            "{}: the snapshot's copy has schema version {in_snap}, the database on disk {on_disk} (OpenClaw was \
             upgraded or downgraded since): rows are not moved across schema versions; restore the whole file \
             with --only {} and let OpenClaw migrate it",
            live.display(),
            live.display()
        )));
    }
    Ok(c)
}

/// A path as an SQLite URI path (`%`, `?` and `#` escaped).
fn uri_path(p: &Path) -> String {
    let mut out = String::new();
    for ch in p.to_string_lossy().chars() {
        match ch {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

/// A foreign key of `table`: its columns, the parent table and the parent's columns.
#[derive(Clone, Debug)]
struct Fk {
    table: String,
    cols: Vec<String>,
    parent: String,
    pcols: Vec<String>,
    cascade: bool,
}

/// The database's tables (`schema`), ordinary ones only.
fn tables(c: &Connection, schema: &str) -> rusqlite::Result<Vec<String>> {
    let mut st = c.prepare(&format!(
        "SELECT name FROM {schema}.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name"
    ))?;
    let v = st.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(v)
}

fn columns(c: &Connection, schema: &str, table: &str) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut st = c.prepare(&format!("PRAGMA {schema}.table_info({})", q(table)))?;
    let v = st.query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, i64>(5)?)))?.collect();
    v
}

fn foreign_keys(c: &Connection, schema: &str, tables: &[String]) -> rusqlite::Result<Vec<Fk>> {
    let mut out = Vec::new();
    for t in tables {
        let mut st = c.prepare(&format!("PRAGMA {schema}.foreign_key_list({})", q(t)))?;
        let rows: Vec<(i64, String, String, Option<String>, String)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(6)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut by_id: BTreeMap<i64, Fk> = BTreeMap::new();
        for (id, parent, from, to, on_delete) in rows {
            let fk = by_id.entry(id).or_insert_with(|| Fk {
                table: t.clone(),
                cols: Vec::new(),
                parent: parent.clone(),
                pcols: Vec::new(),
                cascade: on_delete.eq_ignore_ascii_case("CASCADE"),
            });
            fk.cols.push(from);
            fk.pcols.push(to.unwrap_or_default());
        }
        for mut fk in by_id.into_values() {
            // A key that names no parent columns refers to the parent's primary key.
            if fk.pcols.iter().any(String::is_empty) {
                let mut pk: Vec<(String, i64)> =
                    columns(c, schema, &fk.parent)?.into_iter().filter(|(_, pk)| *pk > 0).collect();
                pk.sort_by_key(|(_, n)| *n);
                fk.pcols = pk.into_iter().map(|(n, _)| n).collect();
            }
            out.push(fk);
        }
    }
    Ok(out)
}

/// The tables of one kind's units in a database: the root and siblings (keyed by the unit key) and
/// the cascade closure, each with how its rows are found.
struct Unit {
    spec: &'static Spec,
    /// (table, the cascade keys through which its rows belong to the unit), parents first; empty
    /// for the root and siblings.
    tables: Vec<(String, Vec<Fk>)>,
    /// Every foreign key of the unit's tables, for the parents outside it.
    fks: Vec<Fk>,
    /// Common columns of each table (on disk and in the snapshot).
    cols: BTreeMap<String, Vec<String>>,
}

impl Unit {
    fn load(c: &Connection, kind: RowKind, db: &Path) -> Result<Unit> {
        let spec = kind.spec();
        let err = |e| sql_err("read the schema of", db, e);
        let all = tables(c, "main").map_err(err)?;
        let in_snap: HashSet<String> = tables(c, "snap").map_err(err)?.into_iter().collect();
        if !all.iter().any(|t| t == spec.table) || !in_snap.contains(spec.table) {
            return Err(Error::Usage(format!(
                "{}: no table {} here or in the snapshot's copy; this is not the database OpenClaw keeps its {}s in",
                db.display(),
                spec.table,
                spec.noun
            )));
        }
        let fks = foreign_keys(c, "main", &all).map_err(err)?;
        // The root and its siblings, then the cascade closure, breadth first: a table joins once a
        // cascade key leads from it to a member.
        let mut members: Vec<String> = vec![spec.table.to_string()];
        members.extend(spec.siblings.iter().filter(|s| all.iter().any(|t| t == *s)).map(|s| s.to_string()));
        let root_like = members.len();
        let joins = |t: &String, members: &[String]| -> Vec<Fk> {
            fks.iter()
                .filter(|f| &f.table == t && f.cascade && &f.parent != t && members.contains(&f.parent))
                .cloned()
                .collect()
        };
        loop {
            let next: Vec<String> = all
                .iter()
                .filter(|t| !members.contains(t) && !spec.skip.contains(&t.as_str()) && in_snap.contains(*t))
                .filter(|t| !joins(t, &members).is_empty())
                .cloned()
                .collect();
            if next.is_empty() {
                break;
            }
            members.extend(next);
        }
        let tables: Vec<(String, Vec<Fk>)> = members
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), if i < root_like { Vec::new() } else { joins(t, &members) }))
            .collect();
        let mut cols = BTreeMap::new();
        for t in &members {
            let here: Vec<String> = columns(c, "main", t).map_err(err)?.into_iter().map(|(n, _)| n).collect();
            let there: HashSet<String> = columns(c, "snap", t).map_err(err)?.into_iter().map(|(n, _)| n).collect();
            cols.insert(t.clone(), here.into_iter().filter(|n| there.contains(n)).collect());
        }
        let fks = fks.into_iter().filter(|f| members.contains(&f.table)).collect();
        Ok(Unit { spec, tables, fks, cols })
    }

    fn is_root_like(&self, t: &str) -> bool {
        t == self.spec.table || self.spec.siblings.contains(&t)
    }

    /// The condition selecting `table`'s rows of the unit whose key is in `temp.cb_unit`, in
    /// `schema` (`main` or `snap`).
    fn member(&self, table: &str, schema: &str, depth: usize) -> String {
        if self.is_root_like(table) || depth > 16 {
            let k: Vec<String> = self.spec.key.iter().map(|c| format!("{}.{}", q(table), q(c))).collect();
            let u: Vec<String> = self.spec.key.iter().map(|c| q(c)).collect();
            return format!("({}) IN (SELECT {} FROM temp.cb_unit)", k.join(", "), u.join(", "));
        }
        let via = self.tables.iter().find(|(t, _)| t == table).map(|(_, v)| v.as_slice()).unwrap_or_default();
        let conds: Vec<String> = via
            .iter()
            .map(|f| {
                let mine: Vec<String> = f.cols.iter().map(|c| format!("{}.{}", q(table), q(c))).collect();
                let theirs: Vec<String> = f.pcols.iter().map(|c| format!("{}.{}", q(&f.parent), q(c))).collect();
                format!(
                    "({}) IN (SELECT {} FROM {schema}.{} WHERE {})",
                    mine.join(", "),
                    theirs.join(", "),
                    q(&f.parent),
                    self.member(&f.parent, schema, depth + 1)
                )
            })
            .collect();
        if conds.is_empty() {
            "0".into()
        } else {
            format!("({})", conds.join(" OR "))
        }
    }

    fn col_list(&self, t: &str) -> String {
        self.cols.get(t).map(|v| v.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ")).unwrap_or_default()
    }

    /// Whether the unit in `temp.cb_unit` is row for row the same on disk and in the snapshot.
    fn same(&self, c: &Connection) -> rusqlite::Result<bool> {
        for (t, _) in &self.tables {
            let cols = self.col_list(t);
            for (a, b) in [("snap", "main"), ("main", "snap")] {
                let sql = format!(
                    "SELECT EXISTS (SELECT {cols} FROM {a}.{t} WHERE {} EXCEPT SELECT {cols} FROM {b}.{t} WHERE {})",
                    self.member(t, a, 0),
                    self.member(t, b, 0),
                    t = q(t)
                );
                if c.query_row(&sql, [], |r| r.get::<_, bool>(0))? {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Deletes the unit in `temp.cb_unit` from disk (the cascade takes its dependent rows).
    fn delete(&self, c: &Connection) -> rusqlite::Result<()> {
        for (t, via) in self.tables.iter().rev() {
            if via.is_empty() {
                c.execute(&format!("DELETE FROM main.{} WHERE {}", q(t), self.member(t, "main", 0)), [])?;
            }
        }
        Ok(())
    }

    /// Copies the unit in `temp.cb_unit` from the snapshot, with the parents it refers to that
    /// the disk lacks. Then the root's columns that the database's triggers changed on insert are
    /// set back to the snapshot's values, and the siblings copied last, so the unit is row for row
    /// the snapshot's.
    fn copy(&self, c: &Connection) -> rusqlite::Result<()> {
        let members: HashSet<&str> = self.tables.iter().map(|(t, _)| t.as_str()).collect();
        let siblings = self.spec.siblings;
        let order = self
            .tables
            .iter()
            .filter(|(t, _)| !siblings.contains(&t.as_str()))
            .chain(self.tables.iter().filter(|(t, _)| siblings.contains(&t.as_str())));
        for (t, _) in order {
            let filter = self.member(t, "snap", 0);
            if siblings.contains(&t.as_str()) {
                self.fix_root(c)?;
                c.execute(&format!("DELETE FROM main.{} WHERE {}", q(t), self.member(t, "main", 0)), [])?;
            }
            for f in self.fks.iter().filter(|f| &f.table == t && !members.contains(f.parent.as_str())) {
                let pcols: Vec<String> =
                    columns(c, "main", &f.parent)?.into_iter().map(|(n, _)| q(&n)).collect::<Vec<_>>();
                let theirs: Vec<String> = f.pcols.iter().map(|x| format!("{}.{}", q(&f.parent), q(x))).collect();
                let mine: Vec<String> = f.cols.iter().map(|x| format!("{}.{}", q(t), q(x))).collect();
                c.execute(
                    &format!(
                        "INSERT OR IGNORE INTO main.{p} ({pc}) SELECT {pc} FROM snap.{p} WHERE ({th}) IN \
                         (SELECT {mi} FROM snap.{t} WHERE {filter})",
                        p = q(&f.parent),
                        pc = pcols.join(", "),
                        th = theirs.join(", "),
                        mi = mine.join(", "),
                        t = q(t),
                    ),
                    [],
                )?;
            }
            let cols = self.col_list(t);
            c.execute(
                &format!("INSERT INTO main.{t} ({cols}) SELECT {cols} FROM snap.{t} WHERE {filter}", t = q(t)),
                [],
            )?;
        }
        if siblings.iter().all(|s| !members.contains(s)) {
            self.fix_root(c)?;
        }
        Ok(())
    }

    /// Sets the root row's columns that differ from the snapshot's back to the snapshot's values,
    /// one column at a time (only a trigger's own columns differ after the insert).
    fn fix_root(&self, c: &Connection) -> rusqlite::Result<()> {
        let t = self.spec.table;
        let key: Vec<String> =
            self.spec.key.iter().map(|k| format!("s.{k} = main.{t}.{k}", k = q(k), t = q(t))).collect();
        for col in self.cols.get(t).into_iter().flatten() {
            let pick =
                format!("(SELECT s.{col} FROM snap.{t} AS s WHERE {})", key.join(" AND "), col = q(col), t = q(t));
            c.execute(
                &format!(
                    "UPDATE main.{t} SET {col} = {pick} WHERE {} AND {col} IS NOT {pick}",
                    self.member(t, "main", 0),
                    col = q(col),
                    t = q(t)
                ),
                [],
            )?;
        }
        Ok(())
    }

    /// Whether the tables the units were validated against are the same on disk as in the
    /// snapshot.
    fn same_context(&self, c: &Connection) -> rusqlite::Result<Option<&'static str>> {
        for t in self.spec.context {
            let cols: Vec<String> = columns(c, "main", t)?.into_iter().map(|(n, _)| q(&n)).collect();
            if cols.is_empty() {
                continue;
            }
            let cols = cols.join(", ");
            let sql = format!(
                "SELECT EXISTS (SELECT {cols} FROM main.{t} EXCEPT SELECT {cols} FROM snap.{t}) \
                 OR EXISTS (SELECT {cols} FROM snap.{t} EXCEPT SELECT {cols} FROM main.{t})",
                t = q(t)
            );
            if c.query_row(&sql, [], |r| r.get::<_, bool>(0))? {
                return Ok(Some(t));
            }
        }
        Ok(None)
    }
}

/// The unit keys and labels of the root table in `schema`, filtered as the set says.
fn units(
    c: &Connection,
    spec: &Spec,
    schema: &str,
    set: &RowSet,
    scopes: Option<&[String]>,
) -> rusqlite::Result<Vec<(Vec<Value>, String)>> {
    let key: Vec<String> = spec.key.iter().map(|k| q(k)).collect();
    let mut sql = format!("SELECT {}, {} FROM {schema}.{} WHERE 1", key.join(", "), spec.label, q(spec.table));
    let mut args: Vec<String> = Vec::new();
    if !set.keys.is_empty() {
        sql.push_str(&format!(" AND {} IN ({})", q(spec.select), vec!["?"; set.keys.len()].join(", ")));
        args.extend(set.keys.iter().cloned());
    }
    if let (Some(col), Some(scopes)) = (spec.scope, scopes) {
        sql.push_str(&format!(" AND {} IN ({})", q(col), vec!["?"; scopes.len().max(1)].join(", ")));
        if scopes.is_empty() {
            args.push(String::new());
        }
        args.extend(scopes.iter().cloned());
    }
    sql.push_str(&format!(" ORDER BY {}", key.join(", ")));
    let mut st = c.prepare(&sql)?;
    let n = spec.key.len();
    let v = st
        .query_map(params_from_iter(args.iter()), |r| {
            let k: Vec<Value> = (0..n).map(|i| r.get::<_, Value>(i)).collect::<rusqlite::Result<_>>()?;
            let label: Option<String> = r.get(n)?;
            Ok((k, label.unwrap_or_default()))
        })?
        .collect();
    v
}

/// A unit key as something to compare and hash (SQLite values are neither `Eq` nor `Hash`).
fn key_id(k: &[Value]) -> String {
    format!("{k:?}")
}

/// Makes `key` the unit `temp.cb_unit` names.
fn set_unit(c: &Connection, key: &[Value]) -> rusqlite::Result<()> {
    c.execute("DELETE FROM temp.cb_unit", [])?;
    let marks = vec!["?"; key.len()].join(", ");
    c.execute(&format!("INSERT INTO temp.cb_unit VALUES ({marks})"), params_from_iter(key.iter()))?;
    Ok(())
}

/// Merges the units `sets` select (all on the database `live`) from the snapshot's image at
/// `image` into `live`: see the module docs. With `apply` false nothing is written (a dry run).
pub fn merge(live: &Path, image: &Path, sets: &[&RowSet], delete: bool, apply: bool) -> Result<MergeReport> {
    let mut c = open_pair(live, image)?;
    let mut report = MergeReport::default();
    let tx = c
        .transaction_with_behavior(if apply {
            rusqlite::TransactionBehavior::Immediate
        } else {
            rusqlite::TransactionBehavior::Deferred
        })
        .map_err(|e| sql_err("lock", live, e))?;
    let run = |tx: &Connection, report: &mut MergeReport| -> rusqlite::Result<std::result::Result<(), Error>> {
        tx.execute_batch("PRAGMA defer_foreign_keys = ON")?;
        for set in sets {
            let unit = match Unit::load(tx, set.kind, live) {
                Ok(u) => u,
                Err(e) => return Ok(Err(e)),
            };
            let spec = unit.spec;
            if let Some(t) = unit.same_context(tx)? {
                return Ok(Err(Error::Usage(format!(
                    "{}: table {t} differs between the snapshot and the disk, so the snapshot's {}s were validated \
                     against something else: restore the whole file with --only {}",
                    live.display(),
                    spec.noun,
                    live.display()
                ))));
            }
            let cols: Vec<String> = spec.key.iter().map(|k| q(k)).collect();
            tx.execute_batch(&format!(
                "DROP TABLE IF EXISTS temp.cb_unit; CREATE TEMP TABLE cb_unit ({})",
                cols.join(", ")
            ))?;
            let wanted = units(tx, spec, "snap", set, None)?;
            let on_disk: HashSet<String> = units(tx, spec, "main", set, None)?.iter().map(|(k, _)| key_id(k)).collect();
            for (key, label) in &wanted {
                set_unit(tx, key)?;
                let there = on_disk.contains(&key_id(key));
                if there && unit.same(tx)? {
                    report.unchanged += 1;
                    continue;
                }
                let action = if there { RowAction::Update } else { RowAction::Create };
                report.changes.push(RowChange { kind: set.kind, label: label.clone(), action });
                if apply {
                    unit.delete(tx)?;
                    unit.copy(tx)?;
                }
            }
            if delete {
                let scopes: Option<Vec<String>> = match spec.scope {
                    Some(col) => {
                        let mut s: Vec<String> = set.within.clone();
                        let mut st = tx.prepare(&format!("SELECT DISTINCT {} FROM snap.{}", q(col), q(spec.table)))?;
                        let found =
                            st.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
                        s.extend(found);
                        Some(s)
                    }
                    None => None,
                };
                let wanted: HashSet<String> = wanted.iter().map(|(k, _)| key_id(k)).collect();
                for (key, label) in units(tx, spec, "main", set, scopes.as_deref())? {
                    if wanted.contains(&key_id(&key)) {
                        continue;
                    }
                    report.changes.push(RowChange { kind: set.kind, label, action: RowAction::Delete });
                    if apply {
                        set_unit(tx, &key)?;
                        unit.delete(tx)?;
                    }
                }
            }
            tx.execute_batch("DROP TABLE IF EXISTS temp.cb_unit")?;
        }
        Ok(Ok(()))
    };
    match run(&tx, &mut report) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(e) => return Err(sql_err("restore rows into", live, e)),
    }
    if apply {
        tx.commit().map_err(|e| {
            Error::Other(format!(
                "{}: the restored rows refer to rows neither the database nor the snapshot has ({e}); nothing was changed",
                live.display()
            ))
        })?;
    }
    Ok(report)
}

/// Session keys in the snapshot's image of an agent database whose key or session id (current or
/// an earlier window of it) is `id`.
pub fn find_sessions(image: &Path, id: &str) -> Result<Vec<String>> {
    let c = open_ro(image)?;
    let mut st = c
        .prepare(
            "SELECT session_key FROM session_nodes WHERE session_key = ?1 OR current_session_id = ?1 \
             UNION SELECT session_key FROM session_windows WHERE session_id = ?1 ORDER BY 1",
        )
        .map_err(|e| sql_err("read sessions of", image, e))?;
    let v = st
        .query_map([id], |r| r.get::<_, String>(0))
        .and_then(|r| r.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| sql_err("read sessions of", image, e))?;
    Ok(v)
}

/// Up to `n` session ids (with their keys) in the snapshot's image, newest first, for messages.
pub fn list_sessions(image: &Path, n: usize) -> Result<Vec<(String, String)>> {
    let c = open_ro(image)?;
    let mut st = c
        .prepare("SELECT current_session_id, session_key FROM session_nodes ORDER BY updated_at DESC LIMIT ?1")
        .map_err(|e| sql_err("read sessions of", image, e))?;
    let v = st
        .query_map([n as i64], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|r| r.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| sql_err("read sessions of", image, e))?;
    Ok(v)
}

/// Whether the image holds a table (an agent database of this era has `session_nodes`).
pub fn has_table(image: &Path, table: &str) -> Result<bool> {
    let c = open_ro(image)?;
    c.query_row("SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)", [table], |r| r.get(0))
        .map_err(|e| sql_err("read", image, e))
}

fn open_ro(image: &Path) -> Result<Connection> {
    Connection::open_with_flags(image, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|e| sql_err("open", image, e))
}

/// One file a restore into a folder writes for rows: its absolute original-style path and content.
pub struct Document {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// The file-era files that hold the units `set` selects in the snapshot's image (see the module
/// docs). `sessions.json` documents hold only the exported entries; the caller merges them into
/// one the folder already has.
pub fn export(image: &Path, set: &RowSet) -> Result<Vec<Document>> {
    let c = open_ro(image)?;
    let err = |e| sql_err("read", image, e);
    let spec = set.kind.spec();
    let mut docs = Vec::new();
    let filter = if set.keys.is_empty() {
        String::new()
    } else {
        format!(" WHERE {} IN ({})", q(spec.select), vec!["?"; set.keys.len()].join(", "))
    };
    let json_doc = |path: PathBuf, v: &Json| Document {
        path,
        bytes: {
            let mut b = serde_json::to_vec_pretty(v).expect("serialize JSON");
            b.push(b'\n');
            b
        },
    };
    match set.kind {
        RowKind::Session => {
            let mut st = c
                .prepare(&format!("SELECT session_key, current_session_id, entry_json FROM session_nodes{filter}"))
                .map_err(err)?;
            let rows: Vec<(String, String, String)> = st
                .query_map(params_from_iter(set.keys.iter()), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .and_then(|r| r.collect::<rusqlite::Result<_>>())
                .map_err(err)?;
            let mut index = Map::new();
            for (key, current, entry) in rows {
                let mut windows: Vec<String> = c
                    .prepare("SELECT session_id FROM session_windows WHERE session_key = ?1 ORDER BY created_at")
                    .and_then(|mut s| s.query_map([&key], |r| r.get(0))?.collect())
                    .map_err(err)?;
                if !windows.contains(&current) {
                    windows.push(current.clone());
                }
                for sid in &windows {
                    let file = set.files_dir.join(format!("{}.jsonl", safe_name(sid)));
                    docs.push(Document {
                        bytes: transcript(&c, sid).map_err(|e| sql_err("read", image, e))?,
                        path: file,
                    });
                }
                let mut e: Json = serde_json::from_str(&entry).unwrap_or_else(|_| Json::Object(Map::new()));
                if let Json::Object(o) = &mut e {
                    o.insert(
                        "sessionFile".into(),
                        Json::String(
                            set.files_dir.join(format!("{}.jsonl", safe_name(&current))).to_string_lossy().into(),
                        ),
                    );
                }
                index.insert(key, e);
            }
            if !index.is_empty() {
                docs.push(json_doc(set.files_dir.join("sessions.json"), &Json::Object(index)));
            }
        }
        RowKind::CronJob => {
            let mut st = c
                .prepare(&format!(
                    "SELECT job_json, state_json FROM cron_jobs{filter} ORDER BY store_key, sort_order, job_id"
                ))
                .map_err(err)?;
            let jobs: Vec<Json> = st
                .query_map(params_from_iter(set.keys.iter()), |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .and_then(|r| r.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(err)?
                .into_iter()
                .map(|(job, state)| {
                    let mut j: Json = serde_json::from_str(&job).unwrap_or(Json::Null);
                    if let (Json::Object(o), Ok(s)) = (&mut j, serde_json::from_str::<Json>(&state)) {
                        o.insert("state".into(), s);
                    }
                    j
                })
                .collect();
            if !jobs.is_empty() {
                docs.push(json_doc(
                    set.files_dir.join("jobs.json"),
                    &serde_json::json!({ "version": 1, "jobs": jobs }),
                ));
            }
        }
        RowKind::AuthProfiles | RowKind::AuthState | RowKind::SharedAuth => {
            let (sql, store) = match set.kind {
                RowKind::AuthProfiles => {
                    (format!("SELECT store_key, store_json FROM auth_profile_store{filter}"), true)
                }
                RowKind::AuthState => (format!("SELECT state_key, state_json FROM auth_profile_state{filter}"), false),
                _ => (format!("SELECT state_key, value_json FROM config_machine_state{filter}"), true),
            };
            let mut st = c.prepare(&sql).map_err(err)?;
            let rows: Vec<(String, String)> = st
                .query_map(params_from_iter(set.keys.iter()), |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|r| r.collect::<rusqlite::Result<_>>())
                .map_err(err)?;
            for (key, text) in rows {
                let is_state = match set.kind {
                    RowKind::SharedAuth => key == SHARED_AUTH_KEYS[1],
                    _ => !store,
                };
                let base = if is_state { "auth-state" } else { "auth-profiles" };
                let name = match key.as_str() {
                    "primary" | "authProfiles.store" | "authProfiles.state" => format!("{base}.json"),
                    k => format!("{base}.{}.json", safe_name(k)),
                };
                let v: Json = serde_json::from_str(&text).unwrap_or(Json::String(text));
                docs.push(json_doc(set.files_dir.join(name), &v));
            }
        }
        RowKind::SessionEntry => {}
    }
    Ok(docs)
}

/// A transcript as JSONL: every event of the window, in order, exactly as stored (compressed
/// events are zstd frames of the same text).
fn transcript(c: &Connection, sid: &str) -> rusqlite::Result<Vec<u8>> {
    let mut st =
        c.prepare("SELECT event_json, event_zstd FROM transcript_events WHERE session_id = ?1 ORDER BY seq")?;
    let mut out = Vec::new();
    let mut rows = st.query([sid])?;
    while let Some(r) = rows.next()? {
        match (r.get::<_, Option<String>>(0)?, r.get::<_, Option<Vec<u8>>>(1)?) {
            (Some(t), _) => out.extend_from_slice(t.as_bytes()),
            (None, Some(z)) => {
                let plain = zstd::decode_all(&z[..]).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Blob, Box::new(e))
                })?;
                out.extend_from_slice(&plain);
            }
            (None, None) => continue,
        }
        out.push(b'\n');
    }
    Ok(out)
}

/// A name safe as one path component (OpenClaw's ids are UUIDs; anything else is made safe).
fn safe_name(s: &str) -> String {
    let t: String = s.chars().map(|c| if c == '/' || c == '\0' { '_' } else { c }).collect();
    if t.is_empty() || t == "." || t == ".." {
        "_".into()
    } else {
        t
    }
}

/// File era: the `sessions.json` entries (a JSON object keyed by session key) whose key or
/// `sessionId` is `id`.
pub fn find_entries(index: &Json, id: &str) -> Vec<String> {
    let Json::Object(o) = index else { return Vec::new() };
    o.iter()
        .filter(|(k, v)| k.as_str() == id || v.get("sessionId").and_then(Json::as_str) == Some(id))
        .map(|(k, _)| k.clone())
        .collect()
}

/// File era: merges the entries `keys` of the snapshot's `sessions.json` into the one on disk
/// (`live`, absent: an empty object), returning the new text and what changed; unchanged
/// entries are counted, not listed.
pub fn merge_entries(live: Option<&Json>, snap: &Json, keys: &[String]) -> (Json, MergeReport) {
    let mut out = match live {
        Some(Json::Object(o)) => o.clone(),
        _ => Map::new(),
    };
    let mut report = MergeReport::default();
    for k in keys {
        let Some(v) = snap.get(k) else { continue };
        match out.get(k) {
            Some(old) if old == v => report.unchanged += 1,
            old => {
                let action = if old.is_some() { RowAction::Update } else { RowAction::Create };
                report.changes.push(RowChange { kind: RowKind::SessionEntry, label: k.clone(), action });
                out.insert(k.clone(), v.clone());
            }
        }
    }
    (Json::Object(out), report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database shaped like an OpenClaw agent database: sessions with windows, events hanging
    /// off windows (two levels of cascade), a conversation parent outside the unit, a derived table
    /// that is skipped, and a table with no tie to sessions.
    const SCHEMA: &str = "
        PRAGMA user_version = 23;
        CREATE TABLE conversations (conversation_id TEXT PRIMARY KEY, label TEXT) STRICT;
        CREATE TABLE session_nodes (session_key TEXT PRIMARY KEY, current_session_id TEXT NOT NULL,
            entry_json TEXT NOT NULL, updated_at INTEGER NOT NULL, entry_valid INTEGER NOT NULL DEFAULT 0) STRICT;
        CREATE TABLE session_key_contract (id INTEGER PRIMARY KEY, main_key TEXT NOT NULL) STRICT;
        INSERT INTO session_key_contract VALUES (1, 'agent:main:main');
        CREATE TABLE session_canonical_validation_pending (session_key TEXT PRIMARY KEY) STRICT;
        -- As OpenClaw's: a row written outside its validation is marked for validation.
        CREATE TRIGGER nodes_insert AFTER INSERT ON session_nodes BEGIN
          UPDATE session_nodes SET entry_valid = 0 WHERE session_key = NEW.session_key;
          INSERT OR IGNORE INTO session_canonical_validation_pending VALUES (NEW.session_key);
        END;
        CREATE TRIGGER nodes_valid AFTER UPDATE OF entry_valid ON session_nodes BEGIN
          INSERT OR IGNORE INTO session_canonical_validation_pending VALUES (NEW.session_key);
        END;
        CREATE TRIGGER nodes_delete AFTER DELETE ON session_nodes BEGIN
          DELETE FROM session_canonical_validation_pending WHERE session_key = OLD.session_key;
        END;
        CREATE TABLE session_windows (session_id TEXT PRIMARY KEY, session_key TEXT NOT NULL,
            created_at INTEGER NOT NULL, primary_conversation_id TEXT,
            FOREIGN KEY (session_key) REFERENCES session_nodes(session_key) ON DELETE CASCADE,
            FOREIGN KEY (primary_conversation_id) REFERENCES conversations(conversation_id) ON DELETE SET NULL) STRICT;
        CREATE TABLE transcript_events (session_id TEXT NOT NULL, seq INTEGER NOT NULL, event_json TEXT,
            event_zstd BLOB, PRIMARY KEY (session_id, seq),
            FOREIGN KEY (session_id) REFERENCES session_windows(session_id) ON DELETE CASCADE) STRICT;
        CREATE TABLE transcript_event_identities (session_id TEXT NOT NULL, seq INTEGER NOT NULL,
            event_id TEXT NOT NULL, PRIMARY KEY (session_id, event_id),
            FOREIGN KEY (session_id, seq) REFERENCES transcript_events(session_id, seq) ON DELETE CASCADE) STRICT;
        CREATE TABLE session_transcript_index_state (session_id TEXT PRIMARY KEY, indexed_seq INTEGER NOT NULL,
            FOREIGN KEY (session_id) REFERENCES session_windows(session_id) ON DELETE CASCADE) STRICT;
        CREATE TABLE memory_index_chunks (id TEXT PRIMARY KEY, text TEXT) STRICT;
    ";

    fn db(path: &Path, sessions: &[(&str, &str, &[&str])]) {
        let c = Connection::open(path).unwrap();
        c.execute_batch(SCHEMA).unwrap();
        c.execute_batch("PRAGMA foreign_keys = ON; INSERT INTO conversations VALUES ('c1', 'chat');").unwrap();
        for (key, sid, events) in sessions {
            c.execute("INSERT INTO session_nodes (session_key, current_session_id, entry_json, updated_at) VALUES (?1, ?2, ?3, 1)", [*key, *sid, &format!("{{\"sessionId\":\"{sid}\"}}")])
                .unwrap();
            // Validated, as OpenClaw leaves a row it wrote.
            c.execute("UPDATE session_nodes SET entry_valid = 1 WHERE session_key = ?1", [key]).unwrap();
            c.execute("DELETE FROM session_canonical_validation_pending WHERE session_key = ?1", [key]).unwrap();
            c.execute("INSERT INTO session_windows VALUES (?1, ?2, 1, 'c1')", [sid, key]).unwrap();
            for (i, e) in (0i64..).zip(events.iter()) {
                c.execute(
                    "INSERT INTO transcript_events (session_id, seq, event_json) VALUES (?1, ?2, ?3)",
                    rusqlite::params![sid, i, e],
                )
                .unwrap();
                c.execute(
                    "INSERT INTO transcript_event_identities VALUES (?1, ?2, ?3)",
                    rusqlite::params![sid, i, format!("e{i}")],
                )
                .unwrap();
            }
            c.execute(
                "INSERT INTO session_transcript_index_state VALUES (?1, ?2)",
                rusqlite::params![sid, events.len() as i64],
            )
            .unwrap();
        }
        c.execute("INSERT INTO memory_index_chunks VALUES ('m1', 'memory')", []).unwrap();
    }

    fn count(path: &Path, sql: &str) -> i64 {
        Connection::open(path).unwrap().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    fn set(db: &Path, kind: RowKind, keys: &[&str]) -> RowSet {
        RowSet {
            db: db.to_path_buf(),
            kind,
            keys: keys.iter().map(|k| k.to_string()).collect(),
            within: vec![],
            files_dir: PathBuf::from("/h/.openclaw/agents/main/sessions"),
        }
    }

    #[test]
    fn one_session_comes_back_with_its_rows_and_nothing_else_changes() {
        let t = tempfile::tempdir().unwrap();
        let (snap, live) = (t.path().join("snap.sqlite"), t.path().join("live.sqlite"));
        db(
            &snap,
            &[("agent:main:a", "sa", &["{\"type\":\"session\"}", "{\"m\":1}"]), ("agent:main:b", "sb", &["{\"b\":1}"])],
        );
        // On disk: `a` is gone, `b` has moved on, `c` is new, the memory index has grown.
        db(&live, &[("agent:main:b", "sb", &["{\"b\":1}", "{\"b\":2}"]), ("agent:main:c", "sc", &["{\"c\":1}"])]);
        Connection::open(&live).unwrap().execute("INSERT INTO memory_index_chunks VALUES ('m2', 'later')", []).unwrap();

        let s = set(&live, RowKind::Session, &["agent:main:a"]);
        let plan = merge(&live, &snap, &[&s], false, false).unwrap();
        assert_eq!(
            plan.changes,
            vec![RowChange { kind: RowKind::Session, label: "agent:main:a".into(), action: RowAction::Create }]
        );
        assert_eq!(count(&live, "SELECT count(*) FROM session_nodes"), 2, "a dry run writes nothing");

        let r = merge(&live, &snap, &[&s], false, true).unwrap();
        assert_eq!(r, plan);
        assert_eq!(count(&live, "SELECT count(*) FROM transcript_events WHERE session_id = 'sa'"), 2);
        assert_eq!(count(&live, "SELECT count(*) FROM transcript_event_identities WHERE session_id = 'sa'"), 2);
        assert_eq!(
            count(&live, "SELECT count(*) FROM session_transcript_index_state WHERE session_id = 'sa'"),
            0,
            "derived: rebuilt by OpenClaw"
        );
        assert_eq!(count(&live, "SELECT count(*) FROM transcript_events WHERE session_id = 'sb'"), 2, "b untouched");
        assert_eq!(count(&live, "SELECT count(*) FROM session_nodes WHERE session_key = 'agent:main:c'"), 1);
        assert_eq!(count(&live, "SELECT count(*) FROM memory_index_chunks"), 2);
        // Its validation state is the snapshot's, not the triggers' "written outside OpenClaw".
        assert_eq!(count(&live, "SELECT entry_valid FROM session_nodes WHERE session_key = 'agent:main:a'"), 1);
        assert_eq!(count(&live, "SELECT count(*) FROM session_canonical_validation_pending"), 0);
        // Again: nothing to do.
        let again = merge(&live, &snap, &[&s], false, true).unwrap();
        assert!(again.changes.is_empty() && again.unchanged == 1, "{again:?}");

        // Every session, with delete: b goes back to one event, c goes, the memory index stays.
        let all = set(&live, RowKind::Session, &[]);
        let r = merge(&live, &snap, &[&all], true, true).unwrap();
        let mut got: Vec<(String, RowAction)> = r.changes.iter().map(|c| (c.label.clone(), c.action)).collect();
        got.sort();
        assert_eq!(
            got,
            [("agent:main:b".to_string(), RowAction::Update), ("agent:main:c".to_string(), RowAction::Delete)]
        );
        assert_eq!(r.unchanged, 1);
        assert_eq!(count(&live, "SELECT count(*) FROM transcript_events WHERE session_id = 'sb'"), 1);
        assert_eq!(count(&live, "SELECT count(*) FROM transcript_events WHERE session_id = 'sc'"), 0);
        assert_eq!(count(&live, "SELECT count(*) FROM transcript_event_identities WHERE session_id = 'sc'"), 0);
        assert_eq!(count(&live, "SELECT count(*) FROM memory_index_chunks"), 2);
        let ok: String =
            Connection::open(&live).unwrap().query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(ok, "ok");
    }

    #[test]
    fn a_missing_parent_is_copied_and_a_schema_change_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let (snap, live) = (t.path().join("snap.sqlite"), t.path().join("live.sqlite"));
        db(&snap, &[("k", "s1", &["{}"])]);
        db(&live, &[]);
        Connection::open(&live).unwrap().execute("DELETE FROM conversations", []).unwrap();
        merge(&live, &snap, &[&set(&live, RowKind::Session, &[])], false, true).unwrap();
        assert_eq!(count(&live, "SELECT count(*) FROM conversations WHERE conversation_id = 'c1'"), 1);
        assert_eq!(count(&live, "SELECT count(*) FROM session_windows"), 1);

        // Validated against another key contract: refused.
        Connection::open(&live)
            .unwrap()
            .execute("UPDATE session_key_contract SET main_key = 'agent:x:main'", [])
            .unwrap();
        let e = merge(&live, &snap, &[&set(&live, RowKind::Session, &[])], false, true).unwrap_err();
        assert!(e.to_string().contains("session_key_contract"), "{e}");

        Connection::open(&live).unwrap().execute_batch("PRAGMA user_version = 24").unwrap();
        let e = merge(&live, &snap, &[&set(&live, RowKind::Session, &[])], false, true).unwrap_err();
        assert!(
            matches!(e, Error::Usage(_))
                && e.to_string().contains("schema version 23")
                && e.to_string().contains("--only"),
            "{e}"
        );
    }

    #[test]
    fn cron_jobs_by_store_and_export_in_the_file_era_formats() {
        let t = tempfile::tempdir().unwrap();
        let (snap, live) = (t.path().join("snap.sqlite"), t.path().join("live.sqlite"));
        let schema = "PRAGMA user_version = 18;
            CREATE TABLE cron_jobs (store_key TEXT NOT NULL, job_id TEXT NOT NULL, name TEXT NOT NULL,
              job_json TEXT NOT NULL, state_json TEXT NOT NULL DEFAULT '{}', sort_order INTEGER NOT NULL DEFAULT 0,
              PRIMARY KEY (store_key, job_id)) STRICT;
            CREATE TABLE cron_job_scratch (store_key TEXT NOT NULL, job_id TEXT NOT NULL, content TEXT,
              PRIMARY KEY (store_key, job_id)) STRICT;
            CREATE TABLE user_preferences (k TEXT PRIMARY KEY, v TEXT) STRICT;";
        for p in [&snap, &live] {
            Connection::open(p).unwrap().execute_batch(schema).unwrap();
        }
        let job = |p: &Path, store: &str, id: &str, name: &str| {
            Connection::open(p)
                .unwrap()
                .execute(
                    "INSERT INTO cron_jobs (store_key, job_id, name, job_json, state_json) VALUES (?1, ?2, ?3, ?4, '{\"nextRunAtMs\":5}')",
                    [store, id, name, &format!("{{\"id\":\"{id}\",\"name\":\"{name}\",\"state\":{{}}}}")],
                )
                .unwrap();
        };
        job(&snap, "/s/cron/jobs.json", "j1", "nightly");
        Connection::open(&snap)
            .unwrap()
            .execute("INSERT INTO cron_job_scratch VALUES ('/s/cron/jobs.json', 'j1', 'notes')", [])
            .unwrap();
        job(&live, "/s/cron/jobs.json", "j2", "later");
        job(&live, "/elsewhere/jobs.json", "j3", "other store");
        Connection::open(&live).unwrap().execute("INSERT INTO user_preferences VALUES ('theme', 'dark')", []).unwrap();
        let s = RowSet {
            db: live.clone(),
            kind: RowKind::CronJob,
            keys: vec![],
            within: vec!["/s/cron/jobs.json".into()],
            files_dir: PathBuf::from("/s/cron"),
        };
        let r = merge(&live, &snap, &[&s], false, true).unwrap();
        assert_eq!(r.changes.len(), 1);
        assert_eq!(r.changes[0].label, "nightly (j1)");
        assert_eq!(count(&live, "SELECT count(*) FROM cron_jobs"), 3);
        assert_eq!(count(&live, "SELECT count(*) FROM cron_job_scratch"), 1);
        // With delete: only the snapshot's store loses what the snapshot lacks.
        let r = merge(&live, &snap, &[&s], true, true).unwrap();
        assert_eq!(
            r.changes,
            vec![RowChange { kind: RowKind::CronJob, label: "later (j2)".into(), action: RowAction::Delete }]
        );
        assert_eq!(count(&live, "SELECT count(*) FROM cron_jobs WHERE job_id = 'j3'"), 1);
        assert_eq!(count(&live, "SELECT count(*) FROM user_preferences"), 1);

        let docs = export(&snap, &s).unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].path, PathBuf::from("/s/cron/jobs.json"));
        let v: Json = serde_json::from_slice(&docs[0].bytes).unwrap();
        assert_eq!(v["jobs"][0]["name"], "nightly");
        assert_eq!(v["jobs"][0]["state"]["nextRunAtMs"], 5);
    }

    #[test]
    fn a_session_exports_as_jsonl_with_its_entry() {
        let t = tempfile::tempdir().unwrap();
        let snap = t.path().join("snap.sqlite");
        db(&snap, &[("agent:main:a", "sa", &["{\"type\":\"session\"}", "{\"m\":1}"])]);
        let big = format!("{{\"text\":\"{}\"}}", "x".repeat(5000));
        let z = zstd::encode_all(big.as_bytes(), 1).unwrap();
        Connection::open(&snap)
            .unwrap()
            .execute("INSERT INTO transcript_events (session_id, seq, event_zstd) VALUES ('sa', 2, ?1)", [z])
            .unwrap();
        assert_eq!(find_sessions(&snap, "sa").unwrap(), ["agent:main:a"]);
        assert_eq!(find_sessions(&snap, "agent:main:a").unwrap(), ["agent:main:a"]);
        assert!(find_sessions(&snap, "nope").unwrap().is_empty());
        let docs = export(&snap, &set(&snap, RowKind::Session, &["agent:main:a"])).unwrap();
        let names: Vec<String> = docs.iter().map(|d| d.path.to_string_lossy().into_owned()).collect();
        assert_eq!(
            names,
            ["/h/.openclaw/agents/main/sessions/sa.jsonl", "/h/.openclaw/agents/main/sessions/sessions.json"]
        );
        assert_eq!(
            String::from_utf8(docs[0].bytes.clone()).unwrap(),
            format!("{{\"type\":\"session\"}}\n{{\"m\":1}}\n{big}\n")
        );
        let idx: Json = serde_json::from_slice(&docs[1].bytes).unwrap();
        assert_eq!(idx["agent:main:a"]["sessionId"], "sa");
        assert_eq!(idx["agent:main:a"]["sessionFile"], "/h/.openclaw/agents/main/sessions/sa.jsonl");
    }

    #[test]
    fn file_era_entries_merge_by_key() {
        let snap = serde_json::json!({ "a": { "sessionId": "1" }, "b": { "sessionId": "2" } });
        let live = serde_json::json!({ "b": { "sessionId": "2" }, "c": { "sessionId": "3" } });
        assert_eq!(find_entries(&snap, "1"), ["a"]);
        assert_eq!(find_entries(&snap, "b"), ["b"]);
        let (out, r) = merge_entries(Some(&live), &snap, &["a".into(), "b".into()]);
        assert_eq!(
            out,
            serde_json::json!({ "a": { "sessionId": "1" }, "b": { "sessionId": "2" }, "c": { "sessionId": "3" } })
        );
        assert_eq!(r.unchanged, 1);
        assert_eq!(
            r.changes,
            vec![RowChange { kind: RowKind::SessionEntry, label: "a".into(), action: RowAction::Create }]
        );
    }
}
