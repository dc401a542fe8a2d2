//! Unit tests of the re-check policy (owners at O(change)) on the fake /proc: a holder's
//! cached sockets are re-checked only when its fd count or start time changed (or no start time
//! can be read), at most [`RECHECK_PER_CALL`] per call.

use std::time::{Duration, Instant};

use super::test_support::{me, pids, reason, FakeProc, LIMITS};
use super::{OwnerResolver, RECHECK_PER_CALL};
use crate::model::snapshot::Owners;

const HELD_BY_100: &str = "the process that held it has closed it or exited";

fn held(owners: &crate::model::FastMap<u64, Owners>, inode: u64) -> bool {
    matches!(&owners[&inode], Owners::Known { .. })
}

#[test]
fn cached_sockets_are_rechecked_only_when_the_fd_count_or_start_time_changes() {
    let fake = FakeProc::new("recheck");
    fake.add(
        100,
        "server",
        LIMITS,
        None,
        &[(3, "socket:[42]"), (4, "socket:[43]"), (5, "/dev/null")],
    );
    fake.stat(100, 'S', 10, 1, 5000);
    // A long min_rescan: no scan in this test after the first, so only re-checks act.
    let mut resolver = OwnerResolver::new(fake.root.clone(), None, Duration::from_secs(25));
    let t0 = Instant::now();
    let at = |secs: u64| t0 + Duration::from_secs(secs);
    let sockets = [(42, me()), (43, me())];
    let owners = resolver.resolve(&sockets, t0);
    assert_eq!(
        (pids(&owners[&42]), pids(&owners[&43])),
        (vec![100], vec![100])
    );

    // fd 4 now holds another socket, the fd count is the same (3) and so is the start time:
    // no reason to re-check; the cache stands (until the 30 s full rescan).
    fake.unlink(100, 4);
    fake.link(100, 4, "socket:[99]");
    let owners = resolver.resolve(&sockets, at(1));
    assert!(held(&owners, 43), "no re-check without a reason");
    assert_eq!(owners[&43].processes()[0].fds_open, Some(3));

    // One more fd: the count moved, so the cached sockets are re-checked and 43 is gone.
    fake.link(100, 6, "/dev/null");
    let owners = resolver.resolve(&sockets, at(2));
    assert!(reason(&owners[&43]).starts_with(HELD_BY_100));
    assert_eq!(pids(&owners[&42]), [100]);
    assert_eq!(resolver.scans(), 1, "within min_rescan");

    // pid 100 is now another process (new start time) with as many fds, another socket at
    // fd 3: only the start time says to look, and 42 is found gone.
    fake.unlink(100, 3);
    fake.link(100, 3, "socket:[77]");
    fake.stat(100, 'S', 1, 1, 9000);
    let owners = resolver.resolve(&sockets, at(3));
    assert!(reason(&owners[&42]).starts_with(HELD_BY_100));

    // Past the full rescan interval the scan sees what is there.
    let owners = resolver.resolve(&sockets, at(31));
    assert_eq!(resolver.scans(), 2);
    assert!(!held(&owners, 42) && !held(&owners, 43));
}

#[test]
fn a_process_without_a_readable_start_time_is_rechecked_on_every_refresh() {
    let fake = FakeProc::new("recheck-nostat");
    fake.add(100, "server", LIMITS, None, &[(3, "socket:[42]")]);
    let mut resolver = OwnerResolver::new(fake.root.clone(), None, Duration::from_secs(25));
    let t0 = Instant::now();
    resolver.resolve(&[(42, me())], t0);
    fake.unlink(100, 3);
    fake.link(100, 3, "socket:[77]");
    let owners = resolver.resolve(&[(42, me())], t0 + Duration::from_secs(1));
    assert!(reason(&owners[&42]).starts_with(HELD_BY_100));
}

#[test]
fn a_holder_of_many_sockets_is_rechecked_a_bounded_share_per_call() {
    let fake = FakeProc::new("recheck-many");
    let n = RECHECK_PER_CALL + RECHECK_PER_CALL / 2;
    let links: Vec<(u32, String)> = (0..n)
        .map(|i| (3 + i as u32, format!("socket:[{}]", 10_000 + i)))
        .collect();
    let fds: Vec<(u32, &str)> = links.iter().map(|(fd, l)| (*fd, l.as_str())).collect();
    fake.add(100, "server", LIMITS, None, &fds);
    fake.stat(100, 'S', 10, 1, 5000);
    let sockets: Vec<(u64, u32)> = (0..n).map(|i| (10_000 + i as u64, me())).collect();
    let mut resolver = OwnerResolver::new(fake.root.clone(), None, Duration::from_secs(25));
    let t0 = Instant::now();
    let at = |secs: u64| t0 + Duration::from_secs(secs);
    resolver.resolve(&sockets, t0);

    // Every socket moves to another fd number (the count changes once: one more fd).
    for (fd, _) in &links {
        fake.unlink(100, *fd);
    }
    for (i, (fd, l)) in links.iter().enumerate() {
        fake.link(100, fd + 100_000, l);
        if i == 0 {
            fake.link(100, 2, "/dev/null");
        }
    }
    let lost = |o: &crate::model::FastMap<u64, Owners>| o.values().filter(|o| !held_o(o)).count();
    let owners = resolver.resolve(&sockets, at(1));
    assert_eq!(lost(&owners), RECHECK_PER_CALL, "the first share");
    // The round goes on at the next call although the count did not move again.
    let owners = resolver.resolve(&sockets, at(2));
    assert_eq!(lost(&owners), n, "the rest");
    // Round over, nothing changed since: no more re-checks, nothing more lost.
    let owners = resolver.resolve(&sockets, at(3));
    assert_eq!(lost(&owners), n);
    assert_eq!(resolver.scans(), 1);
}

fn held_o(o: &Owners) -> bool {
    matches!(o, Owners::Known { .. })
}
