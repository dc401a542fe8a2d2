//! Rules about the processes holding a listener while connections wait in its accept queue:
//! every one of them stopped (nothing will call accept()), or one of them busy computing.

use std::fmt::Write as _;

use super::{ev, BUSY_CPU_PERCENT, HIGH_FILL};
use crate::model::{Finding, ListenerTick, ProcessInfo, Severity, TcpListener};

/// At most this many holders are named in one sentence; the rest are counted.
const NAMED: usize = 4;

/// `nginx[9512] stopped (T)`, `python3[311] running (R, 98% CPU)`, or `nginx[9510]` when its
/// state is unknown.
pub(super) fn holder_with_state(p: &ProcessInfo) -> String {
    let mut s = format!("{}[{}]", p.comm, p.pid);
    if let (Some(word), Some(state)) = (p.state_word(), p.state) {
        let _ = write!(s, " {word} ({state}");
        if let Some(cpu) = p.cpu_percent {
            let _ = write!(s, ", {cpu:.0}% CPU");
        }
        s.push(')');
    }
    s
}

/// `a, b and c`, `a, b, c, d and 3 more`.
pub(super) fn list<T: AsRef<str>>(items: &[T]) -> String {
    let named: Vec<&str> = items.iter().take(NAMED).map(AsRef::as_ref).collect();
    let rest = items.len().saturating_sub(NAMED);
    match (named.as_slice(), rest) {
        ([], _) => String::new(),
        ([one], 0) => (*one).to_string(),
        (all, 0) => {
            let (last, init) = all.split_last().map_or(("", &[][..]), |(l, i)| (*l, i));
            format!("{} and {last}", init.join(", "))
        }
        (all, rest) => format!("{} and {rest} more", all.join(", ")),
    }
}

/// Connections are being lost now: the queue is full at the tick or overflowed during it.
fn losing(lt: &ListenerTick) -> bool {
    lt.overflowed || lt.depth > lt.backlog
}

/// Every holder of a listener with connections waiting is stopped (`T`), or, with a single
/// thread, stopped by a tracer (`t`) or in uninterruptible sleep (`D`): nothing will call
/// accept() until someone acts. Critical when connections are being lost or when every holder
/// was stopped by a signal or a tracer (it will not resume by itself); a warning while some
/// holder is only blocked in the kernel (`D`, often short).
pub(super) fn holders_stopped(lt: &ListenerTick, l: &TcpListener) -> Option<Finding> {
    if lt.depth == 0 || !l.owners.none_can_accept() {
        return None;
    }
    let procs = l.owners.processes();
    let ep = &lt.endpoint;
    let stopped = procs
        .iter()
        .filter(|p| matches!(p.state, Some('T' | 't')))
        .count();
    let blocked = procs.len() - stopped;
    let described: Vec<String> = procs
        .iter()
        .map(|p| {
            format!(
                "{}[{}] is {} ({})",
                p.comm,
                p.pid,
                p.state_word().unwrap_or("stopped"),
                p.state.unwrap_or('?')
            )
        })
        .collect();
    let message = match procs {
        [_] => format!(
            "{} connections wait in the accept queue of {ep} ({}/{}), and {}: it cannot accept() them.",
            lt.depth,
            lt.depth,
            lt.backlog,
            list(&described)
        ),
        _ => format!(
            "{} connections wait in the accept queue of {ep} ({}/{}), and none of the {} processes holding it can accept() them: {}.",
            lt.depth,
            lt.depth,
            lt.backlog,
            procs.len(),
            list(&described)
        ),
    };
    let pids = |want: fn(&ProcessInfo) -> bool| -> String {
        let pids: Vec<String> = procs
            .iter()
            .filter(|p| want(p))
            .map(|p| p.pid.to_string())
            .collect();
        pids.join(" ")
    };
    let mut next = Vec::new();
    let signal_stopped = pids(|p| p.state == Some('T'));
    if !signal_stopped.is_empty() {
        next.push(format!(
            "SIGCONT or restart it (kill -CONT {signal_stopped}); something stopped it: a debugger, Ctrl-Z in its terminal (SIGTSTP), a supervisor."
        ));
    }
    let traced = pids(|p| p.state == Some('t'));
    if !traced.is_empty() {
        next.push(format!(
            "A tracer holds {traced} stopped (a debugger, strace): TracerPid in /proc/PID/status names it; detach it."
        ));
    }
    let in_d = pids(|p| p.state == Some('D'));
    if !in_d.is_empty() {
        next.push(format!(
            "See what {in_d} waits for in the kernel: cat /proc/PID/stack and /proc/PID/wchan (disk or NFS I/O, a hung mount)."
        ));
    }
    Some(Finding {
        severity: if losing(lt) || blocked == 0 {
            Severity::Critical
        } else {
            Severity::Warning
        },
        rule: "holders_stopped".into(),
        listener: Some(ep.to_string()),
        key: Some(lt.key),
        cleared_s: None,
        message,
        evidence: ev([
            ("depth", Some(f64::from(lt.depth))),
            ("backlog", Some(f64::from(lt.backlog))),
            ("holders", Some(procs.len() as f64)),
            ("holders_stopped", Some(stopped as f64)),
            ("holders_blocked", (blocked > 0).then_some(blocked as f64)),
        ]),
        next: next.join(" "),
    })
}

/// A holder uses at least [`BUSY_CPU_PERCENT`] of a core while connections wait all through
/// the tick (or the queue is at least [`HIGH_FILL`] full): a single-threaded server computing
/// is not accepting. Critical when connections are being lost, else a warning.
pub(super) fn holder_busy(lt: &ListenerTick, l: &TcpListener) -> Option<Finding> {
    let fill = f64::from(lt.depth) / f64::from(lt.backlog.max(1));
    if lt.depth == 0 || (lt.depth_low == 0 && fill < HIGH_FILL) {
        return None;
    }
    let mut busy: Vec<(&ProcessInfo, f64)> = l
        .owners
        .processes()
        .iter()
        .filter(|p| !p.cannot_accept())
        .filter_map(|p| Some((p, p.cpu_percent?)))
        .filter(|&(_, cpu)| cpu >= BUSY_CPU_PERCENT)
        .collect();
    busy.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.pid.cmp(&b.0.pid)));
    let &(p, cpu) = busy.first()?;
    let ep = &lt.endpoint;
    let (depth, backlog) = (lt.depth, lt.backlog);
    let others = match busy.len() - 1 {
        0 => String::new(),
        1 => format!(" (and 1 more of its holders uses over {BUSY_CPU_PERCENT:.0}%)"),
        n => format!(" (and {n} more of its holders use over {BUSY_CPU_PERCENT:.0}%)"),
    };
    let (message, next) = if p.threads == Some(1) {
        (
            format!(
                "{}[{}] uses {cpu:.0}% of a core while connections wait in the accept queue of {ep} ({depth}/{backlog}){others}: its event loop is busy (one thread cannot both compute and accept).",
                p.comm, p.pid
            ),
            format!(
                "See what it computes (perf top -p {}, or py-spy dump --pid {} for Python); move that work off the event loop (a worker pool) or run more processes on the port (SO_REUSEPORT).",
                p.pid, p.pid
            ),
        )
    } else {
        let threads = p
            .threads
            .map_or_else(|| "its threads".to_string(), |n| format!("its {n} threads"));
        (
            format!(
                "{}[{}] uses {cpu:.0}% of a core across {threads} while connections wait in the accept queue of {ep} ({depth}/{backlog}){others}: the thread that accepts may be the one that is busy, or starved of CPU.",
                p.comm, p.pid
            ),
            format!(
                "See which thread burns the CPU (top -H -p {}) and what it runs (perf top -p {}).",
                p.pid, p.pid
            ),
        )
    };
    Some(Finding {
        severity: if losing(lt) {
            Severity::Critical
        } else {
            Severity::Warning
        },
        rule: "holder_busy".into(),
        listener: Some(ep.to_string()),
        key: Some(lt.key),
        cleared_s: None,
        message,
        evidence: ev([
            ("cpu_percent", Some(cpu)),
            ("threads", p.threads.map(f64::from)),
            ("depth", Some(f64::from(depth))),
            ("backlog", Some(f64::from(backlog))),
        ]),
        next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::{process, process_in_state};

    #[test]
    fn lists_name_four_and_count_the_rest() {
        assert_eq!(list::<&str>(&[]), "");
        assert_eq!(list(&["a"]), "a");
        assert_eq!(list(&["a", "b"]), "a and b");
        assert_eq!(list(&["a", "b", "c", "d"]), "a, b, c and d");
        assert_eq!(
            list(&["a", "b", "c", "d", "e", "f"]),
            "a, b, c, d and 2 more"
        );
    }

    #[test]
    fn holders_are_named_with_state_and_cpu_when_known() {
        assert_eq!(
            holder_with_state(&process_in_state(9512, "nginx", 'T', None, 1)),
            "nginx[9512] stopped (T)"
        );
        assert_eq!(
            holder_with_state(&process_in_state(311, "python3", 'R', Some(97.6), 1)),
            "python3[311] running (R, 98% CPU)"
        );
        assert_eq!(
            holder_with_state(&process(9510, "nginx", None, None)),
            "nginx[9510]"
        );
    }
}
