//! Fleets: hosts that back up together share a group id; `snapshots --group` lists the set and
//! `restore --group G --host H` finds each host's member.

use crate::support::*;

#[test]
fn a_group_lists_its_members_and_restores_each_host() {
    let sb = Sandbox::with_repo();
    let trees: Vec<_> = (1..=3).map(|i| sb.path(&format!("h{i}"))).collect();
    for (i, t) in trees.iter().enumerate() {
        write(&t.join(format!("agent-{i}.md")), format!("agent {i}'s notes\n").repeat(100 + i).as_bytes());
        write(&t.join("shared/common.bin"), &random_bytes(7, 40_000));
        write(&t.join(format!("own/{i}.bin")), &random_bytes(10 + i as u64, 30_000));
    }
    for (i, t) in trees.iter().enumerate() {
        let host = format!("h{}", i + 1);
        sb.cb()
            .args(["backup", "--json", "--group", "fleet-7", "--host", &host, "--time", "2026-03-01T10:00:00Z"])
            .arg(t)
            .run()
            .ok();
    }
    // Later, outside the group, on h2: `latest` of h2 alone is this one.
    let other = sb.path("other");
    write(&other.join("not-in-the-group.txt"), b"outside");
    sb.cb().args(["backup", "--json", "--host", "h2", "--time", "2026-03-01T11:00:00Z"]).arg(&other).run().ok();

    let all = sb.snapshots();
    assert_eq!(all.len(), 4);
    let members = sb.cb().args(["snapshots", "--json", "--group", "fleet-7"]).run().ok().json();
    let members = members.as_array().unwrap();
    assert_eq!(members.len(), 3, "{members:?}");
    let mut hosts: Vec<&str> = members.iter().map(|m| m["hostname"].as_str().unwrap()).collect();
    hosts.sort();
    assert_eq!(hosts, ["h1", "h2", "h3"]);
    assert!(members.iter().all(|m| m["group"] == "fleet-7"));
    assert!(all.iter().any(|s| s["group"].is_null() && s["hostname"] == "h2"));
    let text = sb.cb().args(["snapshots", "--group", "fleet-7"]).run().ok().stdout;
    assert!(text.contains("group fleet-7") && text.contains("3 snapshots"), "{text}");

    // restore --group G --host h2 (no SNAPSHOT): h2's member, not h2's later snapshot.
    let out = sb.path("out-h2");
    sb.cb().args(["restore", "--group", "fleet-7", "--host", "h2", "--verify", "--target"]).arg(&out).run().ok();
    assert_same_tree(&trees[1], &restored(&out, &trees[1]));
    assert!(!restored(&out, &other).exists(), "the snapshot outside the group must not be restored");
    // `latest` spelled out works the same for another host.
    let out = sb.path("out-h3");
    sb.cb().args(["restore", "latest", "--group", "fleet-7", "--host", "h3", "--target"]).arg(&out).run().ok();
    assert_same_tree(&trees[2], &restored(&out, &trees[2]));

    // ls and dump take --group for `latest` too.
    let ls = sb.cb().args(["ls", "latest", "--group", "fleet-7", "--host", "h1", "--json"]).run().ok().json();
    assert!(ls.as_array().unwrap().iter().any(|e| e["path"].as_str().unwrap().ends_with("agent-0.md")), "{ls}");
    let dumped = sb
        .cb()
        .args(["dump", "latest", "--group", "fleet-7", "--host", "h2"])
        .arg(trees[1].join("agent-1.md"))
        .run()
        .ok();
    assert_eq!(dumped.stdout, "agent 1's notes\n".repeat(101));

    // A group or host with no member: exit 2 and one line naming the group.
    let r = sb.cb().args(["restore", "--group", "fleet-8", "--host", "h2", "--target"]).arg(sb.path("x")).run().code(2);
    assert!(r.one_error_line().contains("fleet-8"), "{}", r.stderr);
    let r = sb.cb().args(["restore", "--group", "fleet-7", "--host", "h9", "--target"]).arg(sb.path("x")).run().code(2);
    assert!(r.one_error_line().contains("h9"), "{}", r.stderr);
    // Without a group, the snapshot is still required.
    sb.cb().args(["restore", "--target"]).arg(sb.path("x")).run().code(2);
}
