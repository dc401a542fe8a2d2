//! Kernel tunables (sysctls) that bound the connection queues, read from `/proc/sys`.
//!
//! The net.* files follow the network namespace of the thread that opens them; fs.* are
//! system-wide. A tunable the kernel does not have (file absent) is `None` without comment; a
//! file that exists but cannot be read or does not hold an integer is `None` plus a problem.

use std::io::ErrorKind;
use std::path::Path;

use crate::model::Tunables;

/// Parses the content of a single-integer sysctl file (surrounding whitespace, such as the
/// final newline, is ignored). Anything else, including an empty file, gives `None`.
pub fn parse_tunable(text: &str) -> Option<i64> {
    text.trim().parse().ok()
}

/// Parses net.ipv4.tcp_mem: three integers (pages) separated by whitespace. Anything else
/// gives `None`.
pub fn parse_tcp_mem(text: &str) -> Option<[i64; 3]> {
    let mut it = text.split_whitespace().map(str::parse::<i64>);
    let v = [it.next()?.ok()?, it.next()?.ok()?, it.next()?.ok()?];
    it.next().is_none().then_some(v)
}

/// Path of net.ipv4.tcp_mem below /proc/sys: present only in the initial network namespace.
const TCP_MEM: &str = "net/ipv4/tcp_mem";

/// Accessor of one field of [`Tunables`].
type Field = fn(&mut Tunables) -> &mut Option<i64>;

/// The tunables sockq reads: sysctl name, path below `/proc/sys`, and the field it fills.
const TUNABLES: [(&str, &str, Field); 9] = [
    ("net.core.somaxconn", "net/core/somaxconn", |t| {
        &mut t.somaxconn
    }),
    (
        "net.ipv4.tcp_max_syn_backlog",
        "net/ipv4/tcp_max_syn_backlog",
        |t| &mut t.tcp_max_syn_backlog,
    ),
    ("net.ipv4.tcp_syncookies", "net/ipv4/tcp_syncookies", |t| {
        &mut t.tcp_syncookies
    }),
    (
        "net.ipv4.tcp_abort_on_overflow",
        "net/ipv4/tcp_abort_on_overflow",
        |t| &mut t.tcp_abort_on_overflow,
    ),
    (
        "net.ipv4.tcp_synack_retries",
        "net/ipv4/tcp_synack_retries",
        |t| &mut t.tcp_synack_retries,
    ),
    (
        "net.ipv4.tcp_syn_retries",
        "net/ipv4/tcp_syn_retries",
        |t| &mut t.tcp_syn_retries,
    ),
    (
        "net.core.netdev_max_backlog",
        "net/core/netdev_max_backlog",
        |t| &mut t.netdev_max_backlog,
    ),
    ("fs.file-max", "fs/file-max", |t| &mut t.file_max),
    ("fs.nr_open", "fs/nr_open", |t| &mut t.nr_open),
];

/// Longest excerpt of a file's content quoted in a problem.
const EXCERPT_CHARS: usize = 40;

/// Reads the tunables below `proc_sys` (normally `/proc/sys`).
///
/// Returns the tunables and the problems met, in plain words naming the sysctl and the
/// reason. A missing file gives `None` silently (this kernel does not have the tunable); an
/// unreadable file or one that does not hold a single integer gives `None` and a problem.
pub fn read_tunables(proc_sys: &Path) -> (Tunables, Vec<String>) {
    let mut tunables = Tunables::default();
    let mut problems = Vec::new();
    for (name, relative, field) in TUNABLES {
        let path = proc_sys.join(relative);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => {
                problems.push(format!(
                    "{name} is not shown: could not read {}: {e}",
                    path.display()
                ));
                continue;
            }
        };
        let text = String::from_utf8_lossy(&bytes);
        match parse_tunable(&text) {
            Some(value) => *field(&mut tunables) = Some(value),
            None => {
                let excerpt: String = text.trim().chars().take(EXCERPT_CHARS).collect();
                problems.push(format!(
                    "{name} is not shown: {} holds {excerpt:?}, not a single integer",
                    path.display()
                ));
            }
        }
    }
    let path = proc_sys.join(TCP_MEM);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            tunables.tcp_mem = parse_tcp_mem(&text);
            if tunables.tcp_mem.is_none() {
                let excerpt: String = text.trim().chars().take(EXCERPT_CHARS).collect();
                problems.push(format!(
                    "net.ipv4.tcp_mem is not shown: {} holds {excerpt:?}, not three integers",
                    path.display()
                ));
            }
        }
        // Only the initial network namespace has it: absent, not a problem.
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => problems.push(format!(
            "net.ipv4.tcp_mem is not shown: could not read {}: {e}",
            path.display()
        )),
    }
    (tunables, problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("sockq-tunables-{}-{tag}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn write(&self, relative: &str, content: &str) {
            let path = self.0.join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Typical values, in the kernel's format; fs.file-max and fs.nr_open at the maxima that
    /// systemd (since v240) sets at boot.
    fn write_all(dir: &TempDir) {
        dir.write("net/core/somaxconn", "4096\n");
        dir.write("net/ipv4/tcp_max_syn_backlog", "512\n");
        dir.write("net/ipv4/tcp_syncookies", "1\n");
        dir.write("net/ipv4/tcp_abort_on_overflow", "0\n");
        dir.write("net/ipv4/tcp_synack_retries", "5\n");
        dir.write("net/ipv4/tcp_syn_retries", "6\n");
        dir.write("net/core/netdev_max_backlog", "1000\n");
        dir.write("fs/file-max", "9223372036854775807\n");
        dir.write("fs/nr_open", "1073741816\n");
        dir.write("net/ipv4/tcp_mem", "287898\t383867\t575796\n");
    }

    #[test]
    fn parse_tunable_cases() {
        assert_eq!(parse_tunable("4096\n"), Some(4096));
        assert_eq!(parse_tunable("  128  "), Some(128));
        assert_eq!(parse_tunable("0"), Some(0));
        assert_eq!(parse_tunable("-1\n"), Some(-1));
        assert_eq!(
            parse_tunable("9223372036854775807\n"),
            Some(9_223_372_036_854_775_807)
        );
        assert_eq!(parse_tunable("9223372036854775808\n"), None);
        assert_eq!(parse_tunable(""), None);
        assert_eq!(parse_tunable("\n"), None);
        assert_eq!(parse_tunable("4096 1\n"), None);
        assert_eq!(parse_tunable("4096\t87380\t6291456\n"), None);
        assert_eq!(parse_tunable("cubic\n"), None);
        assert_eq!(parse_tunable("0x10"), None);
        assert_eq!(parse_tunable("1.5"), None);
    }

    #[test]
    fn reads_every_tunable() {
        let dir = TempDir::new("all");
        write_all(&dir);
        let (t, problems) = read_tunables(&dir.0);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            t,
            Tunables {
                somaxconn: Some(4096),
                tcp_max_syn_backlog: Some(512),
                tcp_syncookies: Some(1),
                tcp_abort_on_overflow: Some(0),
                tcp_synack_retries: Some(5),
                tcp_syn_retries: Some(6),
                netdev_max_backlog: Some(1000),
                file_max: Some(i64::MAX),
                nr_open: Some(1_073_741_816),
                tcp_mem: Some([287_898, 383_867, 575_796]),
            }
        );
    }

    #[test]
    fn tcp_mem_is_three_integers() {
        assert_eq!(
            parse_tcp_mem("287898\t383867\t575796\n"),
            Some([287_898, 383_867, 575_796])
        );
        assert_eq!(parse_tcp_mem("1 2"), None);
        assert_eq!(parse_tcp_mem("1 2 3 4"), None);
        assert_eq!(parse_tcp_mem("1 x 3"), None);
        assert_eq!(parse_tcp_mem(""), None);
        let dir = TempDir::new("tcp_mem");
        write_all(&dir);
        dir.write("net/ipv4/tcp_mem", "lots\n");
        let (t, problems) = read_tunables(&dir.0);
        assert_eq!(t.tcp_mem, None);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("net.ipv4.tcp_mem is not shown:"));
    }

    #[test]
    fn missing_files_are_none_without_problems() {
        let dir = TempDir::new("missing");
        dir.write("net/core/somaxconn", "128\n");
        let (t, problems) = read_tunables(&dir.0);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            t,
            Tunables {
                somaxconn: Some(128),
                ..Tunables::default()
            }
        );

        let (t, problems) = read_tunables(&dir.0.join("does-not-exist"));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(t, Tunables::default());
    }

    #[test]
    fn non_integer_is_none_with_problem() {
        let dir = TempDir::new("garbage");
        write_all(&dir);
        dir.write("net/ipv4/tcp_syncookies", "yes\n");
        dir.write("fs/nr_open", "");
        std::fs::write(dir.0.join("net/core/somaxconn"), b"\xff\xfe\n").unwrap();
        let (t, problems) = read_tunables(&dir.0);
        assert_eq!(t.tcp_syncookies, None);
        assert_eq!(t.nr_open, None);
        assert_eq!(t.somaxconn, None);
        assert_eq!(t.tcp_max_syn_backlog, Some(512));
        assert_eq!(t.file_max, Some(i64::MAX));
        assert_eq!(problems.len(), 3, "{problems:?}");
        let syncookies = dir.0.join("net/ipv4/tcp_syncookies");
        assert!(problems.contains(&format!(
            "net.ipv4.tcp_syncookies is not shown: {} holds \"yes\", not a single integer",
            syncookies.display()
        )));
        assert!(problems
            .iter()
            .any(|p| p.starts_with("fs.nr_open is not shown:") && p.contains("holds \"\"")));
        assert!(problems
            .iter()
            .any(|p| p.starts_with("net.core.somaxconn is not shown:")));
    }

    #[test]
    fn unreadable_file_is_none_with_problem() {
        // A directory in place of the file: reading fails with EISDIR, even as root (a
        // permission-based test would pass vacuously under root).
        let dir = TempDir::new("unreadable");
        write_all(&dir);
        std::fs::remove_file(dir.0.join("net/core/netdev_max_backlog")).unwrap();
        std::fs::create_dir(dir.0.join("net/core/netdev_max_backlog")).unwrap();
        let (t, problems) = read_tunables(&dir.0);
        assert_eq!(t.netdev_max_backlog, None);
        assert_eq!(t.somaxconn, Some(4096));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("net.core.netdev_max_backlog is not shown: could not read "),
            "{}",
            problems[0]
        );
        assert!(problems[0].contains("directory"), "{}", problems[0]);
    }

    #[test]
    fn this_machine_proc_sys_reads_cleanly() {
        // Skipped where /proc/sys is not there (not Linux, restricted sandbox).
        let proc_sys = Path::new("/proc/sys");
        if !proc_sys.join("net/core/somaxconn").exists() {
            eprintln!("skipped: /proc/sys/net/core/somaxconn not found");
            return;
        }
        let (t, problems) = read_tunables(proc_sys);
        assert!(problems.is_empty(), "{problems:?}");
        assert!(t.somaxconn.is_some_and(|v| v > 0));
        assert!(t.file_max.is_some_and(|v| v > 0));
    }
}
