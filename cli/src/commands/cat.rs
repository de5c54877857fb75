//! `clawback cat config|snapshot ID|index ID|pack ID|tree ID|key ID`: decrypted internals as JSON.

use crate::context::Ctx;
use crate::ui::usage;
use anyhow::Result;
use clawback_engine::backend::Kind;
use clawback_engine::format::blob::BlobType;
use clawback_engine::format::id::{PackId, TreeId};
use clawback_engine::format::pack;
use clawback_engine::format::tree::Tree;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to print: config, snapshot, index, pack, tree, key
    pub what: String,
    /// The object's id (a snapshot also takes a prefix or `latest`)
    pub id: Option<String>,
}

fn need_id(a: &Args) -> Result<&str> {
    a.id.as_deref().ok_or_else(|| usage(format!("cat {} needs an id", a.what)))
}

pub fn run(ctx: &Ctx, a: &Args) -> Result<i32> {
    let repo = ctx.open()?;
    let v = match a.what.as_str() {
        "config" => serde_json::to_value(repo.config())?,
        "snapshot" => {
            let (id, s) = crate::select::find_any(&repo, need_id(a)?)?;
            let mut v = serde_json::to_value(&s)?;
            v["id"] = id.to_hex().into();
            v
        }
        "index" => {
            let name = repo.find_object(Kind::Index, need_id(a)?)?;
            serde_json::to_value(repo.read_index_file(&name)?)?
        }
        "pack" => {
            let name = repo.find_object(Kind::Pack, need_id(a)?)?;
            let bytes = repo.backend().read(&name)?;
            let id = name.id::<PackId>().ok_or_else(|| usage("bad pack id"))?;
            let entries = pack::parse(repo.keys(), &id, &bytes)?;
            serde_json::json!({ "id": name.to_string(), "size": bytes.len(), "blobs": entries })
        }
        "tree" => {
            let id = TreeId::from_hex(need_id(a)?).ok_or_else(|| usage("a tree id is 64 hex digits"))?;
            let t = Tree::decode(&id, &repo.read_blob(BlobType::Tree, &id.blob())?)?;
            let nodes: Vec<_> = t
                .nodes
                .iter()
                .map(|n| {
                    let mut v = serde_json::to_value(n).unwrap();
                    v["name"] = n.name_lossy().into();
                    v["target"] = String::from_utf8_lossy(&n.target).into();
                    v
                })
                .collect();
            serde_json::json!({ "id": id.to_hex(), "version": t.version, "nodes": nodes })
        }
        "key" => {
            let name = repo.find_object(Kind::Key, need_id(a)?)?;
            let mut v: serde_json::Value = serde_json::from_slice(&repo.backend().read(&name)?)?;
            // The wrapped key is not secret without the password, but there is no need to show it.
            v["data"] = "<wrapped master key>".into();
            v
        }
        other => {
            return Err(usage(format!("cat: unknown object type {other:?} (config, snapshot, index, pack, tree, key)")))
        }
    };
    crate::ui::print_json(&v);
    Ok(0)
}
