//! The second read of a one-shot sample (`sockq snapshot`): a moment after the holders were
//! read, only their /proc/PID/stat again — the CPU time, state and thread count — for their CPU
//! share over that moment. Nothing else of a holder is read twice: not its fd directory, limit
//! or cached sockets, which stay as the sample found them (a refresh through
//! [`OwnerResolver::resolve`] would redo those, and beyond [`REFRESH_ALL_UP_TO`] holders would
//! read only some of them).
//!
//! [`REFRESH_ALL_UP_TO`]: super::REFRESH_ALL_UP_TO

use std::sync::Arc;
use std::time::Instant;

use super::activity::Activity;
use super::OwnerResolver;
use crate::model::snapshot::{Owners, ProcessInfo};
use crate::model::{fast_map, FastMap};

impl OwnerResolver {
    /// Reads /proc/PID/stat of every process in the known owner lists `owners` again and
    /// writes its state, thread count and CPU share since its previous read into them (each
    /// list then busiest first again); `now` dates the reads as in
    /// [`OwnerResolver::resolve`]. A process whose stat cannot be read now (it exited), could
    /// not be read before, or whose pid now belongs to a process started at another time keeps
    /// what the sample read. Lists shared between sockets stay shared.
    pub fn reread_activity(&mut self, owners: &mut [&mut Owners], now: Instant) {
        self.call_started = Instant::now();
        let mut pids: Vec<u32> = owners
            .iter()
            .flat_map(|o| o.processes().iter().map(|p| p.pid))
            .collect();
        pids.sort_unstable();
        pids.dedup();
        let mut read: FastMap<u32, Activity> = fast_map(pids.len());
        for pid in pids {
            if let Some(a) = self.reread_stat(pid, now) {
                read.insert(pid, a);
            }
        }
        if read.is_empty() {
            return;
        }
        // Old list (kept alive, so no address is reused while the map holds it) → new list.
        let mut rebuilt: FastMap<*const Vec<ProcessInfo>, (Arc<Vec<ProcessInfo>>, Arc<_>)> =
            FastMap::default();
        for o in owners.iter_mut() {
            let Owners::Known { processes } = &mut **o else {
                continue;
            };
            let (_, new) = rebuilt
                .entry(Arc::as_ptr(processes))
                .or_insert_with(|| (processes.clone(), Arc::new(with_activity(processes, &read))));
            *processes = new.clone();
        }
    }

    /// The activity of `pid` after a second read of its /proc/PID/stat, `None` when the
    /// sample's read stands (see [`OwnerResolver::reread_activity`]).
    fn reread_stat(&mut self, pid: u32, now: Instant) -> Option<Activity> {
        let prev = self.procs.get(&pid)?.activity?;
        let stat = self.access.stat(pid)?;
        if stat.starttime != prev.starttime() {
            return None;
        }
        let read_at = self.read_time(now);
        let next = Activity::next(Some(&prev), &stat, read_at, self.clk_tck);
        if let Some(p) = self.procs.get_mut(&pid) {
            p.activity = Some(next);
        }
        Some(next)
    }
}

/// `processes` with the activity read again where there is one, busiest first.
fn with_activity(processes: &[ProcessInfo], read: &FastMap<u32, Activity>) -> Vec<ProcessInfo> {
    let mut out = processes.to_vec();
    for p in &mut out {
        if let Some(a) = read.get(&p.pid) {
            p.state = Some(a.state);
            p.threads = Some(a.threads);
            p.cpu_percent = a.cpu.percent;
        }
    }
    out.sort_by(ProcessInfo::busiest_first);
    out
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::time::Duration;

    use super::super::test_support::{me, FakeProc, LIMITS};
    use super::*;

    fn cpu_of(o: &Owners, pid: u32) -> Option<f64> {
        o.processes()
            .iter()
            .find(|p| p.pid == pid)
            .and_then(|p| p.cpu_percent)
    }

    #[test]
    fn reread_gives_every_holder_a_cpu_share_from_stat_alone() {
        let fake = FakeProc::new("reread");
        // 300 holders: more than REFRESH_ALL_UP_TO, which a refresh would read only in part.
        let pids: Vec<u32> = (1000..1300).collect();
        for &pid in &pids {
            let sock = format!("socket:[{pid}]");
            fake.add(pid, "worker", LIMITS, None, &[(3, sock.as_str())]);
            fake.stat(pid, 'S', 100, 1, 5000);
        }
        let mut resolver = OwnerResolver::new(fake.root.clone(), None, Duration::from_secs(5));
        resolver.reads_at_now = true;
        let hz = resolver.clk_tck.expect("sysconf(_SC_CLK_TCK)");
        let t0 = Instant::now();
        let sockets: Vec<(u64, u32)> = pids.iter().map(|&p| (u64::from(p), me())).collect();
        let found = resolver.resolve(&sockets, t0);
        let mut owners: Vec<Owners> = sockets.iter().map(|s| found[&s.0].clone()).collect();
        assert!(owners
            .iter()
            .all(|o| cpu_of(o, o.processes()[0].pid).is_none()));
        let fds_before: Vec<Option<u64>> =
            owners.iter().map(|o| o.processes()[0].fds_open).collect();

        // Half a second on: each used `pid - 1000` more ticks; one has stopped; the fd
        // directories are gone (a reread must not need them).
        for &pid in &pids {
            let state = if pid == 1007 { 'T' } else { 'R' };
            fake.stat(pid, state, 100 + u64::from(pid - 1000), 2, 5000);
            fs::remove_dir_all(fake.root.join(format!("{pid}/fd"))).unwrap();
        }
        let mut refs: Vec<&mut Owners> = owners.iter_mut().collect();
        resolver.reread_activity(&mut refs, t0 + Duration::from_millis(500));
        assert_eq!(resolver.scans(), 1, "no scan");
        for o in &owners {
            let p = &o.processes()[0];
            let ticks = f64::from(p.pid - 1000);
            let want = ticks / hz as f64 / 0.5 * 100.0;
            assert!(
                p.cpu_percent.is_some_and(|c| (c - want).abs() < 1e-9),
                "{p:?}"
            );
            assert_eq!(p.threads, Some(2), "{p:?}");
            assert_eq!(p.state, Some(if p.pid == 1007 { 'T' } else { 'R' }));
        }
        let fds_after: Vec<Option<u64>> =
            owners.iter().map(|o| o.processes()[0].fds_open).collect();
        assert_eq!(fds_before, fds_after, "fd counts stay as sampled");
    }

    #[test]
    fn reread_keeps_shared_lists_shared_and_orders_them_busiest_first() {
        let fake = FakeProc::new("reread-shared");
        // A pre-fork server: two workers hold both listeners.
        for pid in [100, 101] {
            fake.add(
                pid,
                "nginx",
                LIMITS,
                None,
                &[(6, "socket:[42]"), (7, "socket:[43]")],
            );
            fake.stat(pid, 'S', 0, 1, 5000);
        }
        let mut resolver = OwnerResolver::new(fake.root.clone(), None, Duration::from_secs(5));
        resolver.reads_at_now = true;
        let t0 = Instant::now();
        let found = resolver.resolve(&[(42, me()), (43, me())], t0);
        let mut owners = [found[&42].clone(), found[&43].clone()];
        // No share yet: by pid.
        assert_eq!(owners[0].processes()[0].pid, 100);
        fake.stat(101, 'R', 50, 1, 5000);
        fake.stat(100, 'S', 1, 1, 5000);
        let [a, b] = &mut owners;
        resolver.reread_activity(&mut [a, b], t0 + Duration::from_secs(1));
        for o in &owners {
            let order: Vec<u32> = o.processes().iter().map(|p| p.pid).collect();
            assert_eq!(order, [101, 100], "the busy worker first");
        }
        let (Owners::Known { processes: a }, Owners::Known { processes: b }) =
            (&owners[0], &owners[1])
        else {
            panic!("known owners expected: {owners:?}");
        };
        assert!(Arc::ptr_eq(a, b), "one list for both sockets");
    }

    #[test]
    fn reread_keeps_the_sample_for_an_exited_or_replaced_process() {
        let fake = FakeProc::new("reread-gone");
        fake.add(100, "gone", LIMITS, None, &[(3, "socket:[42]")]);
        fake.add(101, "reused", LIMITS, None, &[(3, "socket:[43]")]);
        fake.stat(100, 'S', 10, 1, 5000);
        fake.stat(101, 'S', 10, 1, 5000);
        let mut resolver = OwnerResolver::new(fake.root.clone(), None, Duration::from_secs(5));
        resolver.reads_at_now = true;
        let t0 = Instant::now();
        let found = resolver.resolve(&[(42, me()), (43, me())], t0);
        let mut owners = [found[&42].clone(), found[&43].clone()];
        let before = owners.clone();
        fake.remove(100);
        // Pid 101 now belongs to a process started later.
        fake.stat(101, 'R', 500, 4, 9000);
        let [a, b] = &mut owners;
        resolver.reread_activity(&mut [a, b], t0 + Duration::from_secs(1));
        assert_eq!(owners, before);
    }
}
