//! Parsers for `/proc/net/netstat` and `/proc/net/snmp` (pure functions, no I/O).
//!
//! Both files are made of line pairs: a header line `Prefix: name1 name2 ...` followed by a
//! values line `Prefix: val1 val2 ...` with the same prefix and as many values as names. The
//! set of names changes with the kernel version (fields are added, some are removed, and a
//! block can be missing altogether), so everything is kept by the name the kernel prints:
//! a field this kernel does not have is absent, never zero.

use std::collections::BTreeMap;
use std::str::FromStr;

use thiserror::Error;

use crate::model::{Counters, TcpSockstat};

/// Name used for `/proc/net/netstat` in problem messages.
const NETSTAT: &str = "/proc/net/netstat";
/// Name used for `/proc/net/snmp` in problem messages.
const SNMP: &str = "/proc/net/snmp";

/// Longest excerpt of an offending line quoted in an error.
const EXCERPT_CHARS: usize = 40;

/// Why the text of `/proc/net/netstat` or `/proc/net/snmp` could not be split into blocks.
/// Line numbers count from 1.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProcNetError {
    /// A non-empty line that does not start with `Prefix:`.
    #[error("line {line} does not start with a `Name:` prefix: {excerpt:?}")]
    NoPrefix {
        /// Line number.
        line: usize,
        /// The start of the line.
        excerpt: String,
    },
    /// A header line that is the last line, or is followed by an empty line.
    #[error("the {prefix} header on line {line} has no values line after it")]
    MissingValues {
        /// Prefix of the header line.
        prefix: String,
        /// Line number of the header.
        line: usize,
    },
    /// A header line followed by a line with another prefix instead of its values.
    #[error(
        "the {prefix} header on line {line} is followed by a {found} line instead of its values"
    )]
    PrefixMismatch {
        /// Prefix of the header line.
        prefix: String,
        /// Line number of the header.
        line: usize,
        /// Prefix of the line that follows it.
        found: String,
    },
    /// The values line does not have as many values as the header has names.
    #[error("the {prefix} block on lines {line}-{} has {names} names but {values} values", line + 1)]
    CountMismatch {
        /// Prefix of the block.
        prefix: String,
        /// Line number of the header.
        line: usize,
        /// Number of names on the header line.
        names: usize,
        /// Number of values on the values line.
        values: usize,
    },
    /// A second block with a prefix already seen.
    #[error("the {prefix} block on line {line} repeats a block already seen")]
    DuplicateBlock {
        /// Prefix of the block.
        prefix: String,
        /// Line number of the second header.
        line: usize,
    },
}

/// Splits `line` into its prefix (before the first `:`) and the rest, when the prefix is a
/// non-empty word without whitespace.
fn split_prefix(line: &str) -> Option<(&str, &str)> {
    let (prefix, rest) = line.split_once(':')?;
    if prefix.is_empty() || prefix.chars().any(char::is_whitespace) {
        return None;
    }
    Some((prefix, rest))
}

/// The first characters of `line`, for an error message.
fn excerpt(line: &str) -> String {
    line.chars().take(EXCERPT_CHARS).collect()
}

/// Splits the text of `/proc/net/netstat` or `/proc/net/snmp` into its blocks: for each
/// prefix (`TcpExt`, `IpExt`, `Tcp`, `Ip`, ...), the (name, raw value) pairs in kernel order.
///
/// Empty lines between blocks are ignored, so empty text gives an empty map. Any line that
/// breaks the header/values pairing is an error naming the prefix and the line: a header with
/// no values line, a header followed by another prefix, a names/values count mismatch, a line
/// without a prefix (e.g. trailing garbage) or a repeated block. Values are not checked here.
pub fn parse_blocks(text: &str) -> Result<BTreeMap<String, Vec<(String, String)>>, ProcNetError> {
    let mut blocks = BTreeMap::new();
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    while let Some((line, header)) = lines.next() {
        if header.trim().is_empty() {
            continue;
        }
        let (prefix, names) = split_prefix(header).ok_or_else(|| ProcNetError::NoPrefix {
            line,
            excerpt: excerpt(header),
        })?;
        let values = match lines.next() {
            Some((_, next)) if !next.trim().is_empty() => next,
            _ => {
                return Err(ProcNetError::MissingValues {
                    prefix: prefix.to_owned(),
                    line,
                })
            }
        };
        let (found, values) = split_prefix(values).ok_or_else(|| ProcNetError::NoPrefix {
            line: line + 1,
            excerpt: excerpt(values),
        })?;
        if found != prefix {
            return Err(ProcNetError::PrefixMismatch {
                prefix: prefix.to_owned(),
                line,
                found: found.to_owned(),
            });
        }
        let names: Vec<&str> = names.split_whitespace().collect();
        let values: Vec<&str> = values.split_whitespace().collect();
        if names.len() != values.len() {
            return Err(ProcNetError::CountMismatch {
                prefix: prefix.to_owned(),
                line,
                names: names.len(),
                values: values.len(),
            });
        }
        if blocks.contains_key(prefix) {
            return Err(ProcNetError::DuplicateBlock {
                prefix: prefix.to_owned(),
                line,
            });
        }
        let pairs = names
            .into_iter()
            .zip(values)
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        blocks.insert(prefix.to_owned(), pairs);
    }
    Ok(blocks)
}

/// Parses one block of one file into typed values, reporting every problem in `problems`.
/// `kind` describes the accepted values in plain words, for the problem messages.
fn typed_block<T: FromStr>(
    file: &str,
    text: &str,
    prefix: &str,
    kind: &str,
    problems: &mut Vec<String>,
) -> BTreeMap<String, T> {
    let mut out = BTreeMap::new();
    let mut blocks = match parse_blocks(text) {
        Ok(blocks) => blocks,
        Err(e) => {
            problems.push(format!(
                "{file} could not be read ({e}); none of its {prefix} counters are shown"
            ));
            return out;
        }
    };
    let Some(pairs) = blocks.remove(prefix) else {
        problems.push(format!(
            "{file} has no {prefix} block; its {prefix} counters are not shown"
        ));
        return out;
    };
    for (name, raw) in pairs {
        if out.contains_key(&name) {
            problems.push(format!(
                "{file}: {prefix} field {name} appears twice; the first value is kept"
            ));
            continue;
        }
        match raw.parse::<T>() {
            Ok(value) => {
                out.insert(name, value);
            }
            Err(_) => problems.push(format!(
                "{file}: {prefix} field {name} has the value {raw:?}, which is not {kind}; \
                 it is left out"
            )),
        }
    }
    out
}

/// Reads the counters sockq uses from the texts of `/proc/net/netstat` (block `TcpExt`, as
/// unsigned counters) and `/proc/net/snmp` (block `Tcp`, signed: `MaxConn` is -1).
///
/// Returns the counters and the problems met, in plain words naming the file, the field and
/// the bad value. A value that does not parse is left absent (never zero); a missing block or
/// a malformed file leaves that file's map empty. Never panics.
pub fn parse_counters(netstat: &str, snmp: &str) -> (Counters, Vec<String>) {
    let mut problems = Vec::new();
    let tcp_ext = typed_block::<u64>(
        NETSTAT,
        netstat,
        "TcpExt",
        "a non-negative whole number below 2^64",
        &mut problems,
    );
    let tcp = typed_block::<i64>(
        SNMP,
        snmp,
        "Tcp",
        "a whole number that fits in 64 bits",
        &mut problems,
    );
    (Counters { tcp_ext, tcp }, problems)
}

/// Parses the `TCP:` line of `/proc/net/sockstat` ("TCP: inuse 3 orphan 0 tw 0 alloc 3 mem
/// 30"): key/value pairs, each value absent when it does not parse (never zero). `None` when
/// the text has no `TCP:` line. `page_size` is the unit of `mem`. Never panics.
pub fn parse_sockstat(text: &str, page_size: u64) -> Option<TcpSockstat> {
    let line = text.lines().find_map(|l| l.strip_prefix("TCP:"))?;
    let mut s = TcpSockstat {
        page_size,
        ..TcpSockstat::default()
    };
    let mut words = line.split_whitespace();
    while let (Some(key), Some(value)) = (words.next(), words.next()) {
        let value = value.parse::<u64>().ok();
        match key {
            "inuse" => s.inuse = value,
            "orphan" => s.orphan = value,
            "tw" => s.tw = value,
            "alloc" => s.alloc = value,
            "mem" => s.mem_pages = value,
            _ => {}
        }
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::QUEUE_COUNTERS;

    #[test]
    fn sockstat_tcp_line_from_a_real_file_and_broken_ones() {
        let real = include_str!("../../tests/fixtures/proc/6.18/sockstat");
        let s = parse_sockstat(real, 4096).unwrap();
        assert_eq!(
            (s.inuse, s.orphan, s.tw, s.alloc, s.mem_pages),
            (Some(3), Some(0), Some(0), Some(8), Some(68))
        );
        assert_eq!(s.mem_bytes(), Some(68 * 4096));
        // UDP's `mem` is not TCP's.
        assert_eq!(parse_sockstat("UDP: inuse 1 mem 9\n", 4096), None);
        let broken = parse_sockstat("TCP: inuse x orphan 1 mem\n", 4096).unwrap();
        assert_eq!(
            (broken.inuse, broken.orphan, broken.mem_pages),
            (None, Some(1), None)
        );
        assert_eq!(parse_sockstat("", 4096), None);
    }

    const NETSTAT_6_18: &str = include_str!("../../tests/fixtures/proc/6.18/netstat");
    const SNMP_6_18: &str = include_str!("../../tests/fixtures/proc/6.18/snmp");
    const NETSTAT_6_18_OVERFLOW: &str =
        include_str!("../../tests/fixtures/proc/6.18-netns-overflow/netstat");
    const SNMP_6_18_OVERFLOW: &str =
        include_str!("../../tests/fixtures/proc/6.18-netns-overflow/snmp");
    const NETSTAT_NODE_EXPORTER: &str =
        include_str!("../../tests/fixtures/proc/4.x-node_exporter/netstat");
    const SNMP_NODE_EXPORTER: &str =
        include_str!("../../tests/fixtures/proc/4.x-node_exporter/snmp");
    const NETSTAT_2_6_18: &str = include_str!("../../tests/fixtures/proc/2.6.18-el5/netstat");
    const SNMP_2_6_18: &str = include_str!("../../tests/fixtures/proc/2.6.18-el5/snmp");
    const NETSTAT_GARBAGE: &str = include_str!("../../tests/fixtures/proc/garbage/netstat");
    const NETSTAT_GARBAGE_VALUES: &str =
        include_str!("../../tests/fixtures/proc/garbage/netstat-values");

    /// Every real (kernel-written) fixture pair, with a label for failure messages.
    const REAL: [(&str, &str, &str); 4] = [
        ("6.18", NETSTAT_6_18, SNMP_6_18),
        (
            "6.18-netns-overflow",
            NETSTAT_6_18_OVERFLOW,
            SNMP_6_18_OVERFLOW,
        ),
        (
            "4.x-node_exporter",
            NETSTAT_NODE_EXPORTER,
            SNMP_NODE_EXPORTER,
        ),
        ("2.6.18-el5", NETSTAT_2_6_18, SNMP_2_6_18),
    ];

    fn keys<V>(map: &BTreeMap<String, V>) -> Vec<&str> {
        map.keys().map(String::as_str).collect()
    }

    #[test]
    fn blocks_of_6_18_netstat_and_snmp() {
        let netstat = parse_blocks(NETSTAT_6_18).unwrap();
        assert_eq!(keys(&netstat), ["IpExt", "MPTcpExt", "TcpExt"]);
        assert_eq!(netstat["TcpExt"].len(), 135);
        assert_eq!(netstat["IpExt"].len(), 18);
        assert_eq!(netstat["MPTcpExt"].len(), 76);
        assert_eq!(
            netstat["TcpExt"][0],
            ("SyncookiesSent".to_owned(), "0".to_owned())
        );
        let last = netstat["TcpExt"].last().unwrap();
        assert_eq!(last.0, "TCPAODroppedIcmps");

        let snmp = parse_blocks(SNMP_6_18).unwrap();
        assert_eq!(
            keys(&snmp),
            ["Icmp", "IcmpMsg", "Ip", "Tcp", "Udp", "UdpLite"]
        );
        assert_eq!(snmp["Tcp"][3], ("MaxConn".to_owned(), "-1".to_owned()));
    }

    #[test]
    fn blocks_depend_on_content_not_only_kernel() {
        // Same kernel, but the fresh namespace never saw an ICMP message: no IcmpMsg block.
        let snmp = parse_blocks(SNMP_6_18_OVERFLOW).unwrap();
        assert_eq!(keys(&snmp), ["Icmp", "Ip", "Tcp", "Udp", "UdpLite"]);
    }

    #[test]
    fn counters_6_18_host() {
        let (c, problems) = parse_counters(NETSTAT_6_18, SNMP_6_18);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.tcp_ext.len(), 135);
        assert_eq!(c.tcp_ext("ListenOverflows"), Some(0));
        assert_eq!(c.tcp_ext("ListenDrops"), Some(0));
        assert_eq!(c.tcp_ext("TCPHPHits"), Some(107));
        assert_eq!(c.tcp_ext("TW"), Some(8));
        for name in QUEUE_COUNTERS {
            assert!(c.tcp_ext(name).is_some(), "{name} missing on 6.18");
        }
        // Only in recent kernels.
        assert_eq!(c.tcp_ext("TCPMigrateReqSuccess"), Some(0));
        assert_eq!(c.tcp_ext("TCPAORequired"), Some(0));
        // Removed in 4.14.
        assert_eq!(c.tcp_ext("TCPPrequeued"), None);

        assert_eq!(c.tcp.len(), 15);
        assert_eq!(c.tcp["MaxConn"], -1);
        assert_eq!(c.tcp["ActiveOpens"], 38);
        assert_eq!(c.tcp["PassiveOpens"], 2);
        assert_eq!(c.tcp["EstabResets"], 28);
        assert_eq!(c.tcp["OutRsts"], 30);
        assert_eq!(c.tcp["InCsumErrors"], 0);
    }

    #[test]
    fn counters_6_18_accept_queue_overflow() {
        // Backlog 1, no accept(), 8 connects: 24 SYNs dropped (ss showed d24 on the listener).
        let (c, problems) = parse_counters(NETSTAT_6_18_OVERFLOW, SNMP_6_18_OVERFLOW);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.tcp_ext("ListenOverflows"), Some(24));
        assert_eq!(c.tcp_ext("ListenDrops"), Some(24));
        assert_eq!(c.tcp_ext("TCPSynRetrans"), Some(18));
        assert_eq!(c.tcp_ext("TCPReqQFullDrop"), Some(0));
        assert_eq!(c.tcp_ext("TCPReqQFullDoCookies"), Some(0));
        assert_eq!(c.tcp_ext("SyncookiesSent"), Some(0));
        assert_eq!(c.tcp["ActiveOpens"], 8);
        assert_eq!(c.tcp["PassiveOpens"], 2);
        assert_eq!(c.tcp["CurrEstab"], 4);
        assert_eq!(c.tcp["RetransSegs"], 18);
        assert_eq!(c.tcp["MaxConn"], -1);
    }

    #[test]
    fn counters_node_exporter_fixture() {
        let (c, problems) = parse_counters(NETSTAT_NODE_EXPORTER, SNMP_NODE_EXPORTER);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.tcp_ext.len(), 83);
        assert_eq!(c.tcp_ext("ListenOverflows"), Some(0));
        assert_eq!(c.tcp_ext("ListenDrops"), Some(0));
        assert_eq!(c.tcp_ext("SyncookiesFailed"), Some(2));
        assert_eq!(c.tcp_ext("TW"), Some(388_812));
        assert_eq!(c.tcp_ext("TCPHPHits"), Some(4_471_289));
        assert_eq!(c.tcp_ext("TCPOFOQueue"), Some(42));
        assert_eq!(c.tcp_ext("TCPPrequeued"), Some(80_568));
        assert_eq!(c.tcp_ext("TCPReqQFullDrop"), Some(0));
        // Present in 6.18, absent here (not zero).
        assert_eq!(c.tcp_ext("TCPSynRetrans"), None);
        assert_eq!(c.tcp_ext("TCPRetransFail"), None);
        assert_eq!(c.tcp_ext("TCPMigrateReqSuccess"), None);

        assert_eq!(c.tcp["MaxConn"], -1);
        assert_eq!(c.tcp["ActiveOpens"], 3556);
        assert_eq!(c.tcp["AttemptFails"], 341);
        assert_eq!(c.tcp["InErrs"], 5);
        assert_eq!(c.tcp["InCsumErrors"], 0);
    }

    #[test]
    fn counters_2_6_18_el5() {
        let (c, problems) = parse_counters(NETSTAT_2_6_18, SNMP_2_6_18);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.tcp_ext.len(), 65);
        assert_eq!(c.tcp_ext("ListenOverflows"), Some(176));
        assert_eq!(c.tcp_ext("ListenDrops"), Some(176));
        assert_eq!(c.tcp_ext("SyncookiesFailed"), Some(690));
        assert_eq!(c.tcp_ext("TW"), Some(269_418));
        // Beyond 32 bits.
        assert_eq!(
            c.tcp_ext("TCPDirectCopyFromPrequeue"),
            Some(6_562_011_777_866)
        );
        // The SYN-queue counters did not exist yet: absent, not zero.
        assert_eq!(c.tcp_ext("TCPReqQFullDrop"), None);
        assert_eq!(c.tcp_ext("TCPReqQFullDoCookies"), None);
        assert_eq!(c.tcp_ext("TCPBacklogDrop"), None);

        assert_eq!(c.tcp.len(), 14);
        assert_eq!(c.tcp["MaxConn"], -1);
        assert_eq!(c.tcp["PassiveOpens"], 1_093_780);
        assert_eq!(c.tcp["InSegs"], 10_020_102_827);
        assert_eq!(c.tcp["OutRsts"], 191_636);
        assert_eq!(c.tcp.get("InCsumErrors"), None);
    }

    #[test]
    fn fields_of_6_18_missing_in_2_6_18_are_absent() {
        let (new, _) = parse_counters(NETSTAT_6_18, SNMP_6_18);
        let (old, _) = parse_counters(NETSTAT_2_6_18, SNMP_2_6_18);
        let only_new: Vec<&str> = new
            .tcp_ext
            .keys()
            .filter(|k| !old.tcp_ext.contains_key(*k))
            .map(String::as_str)
            .collect();
        assert_eq!(only_new.len(), 81, "{only_new:?}");
        assert!(only_new.contains(&"TCPReqQFullDrop"));
        assert!(only_new.contains(&"TCPReqQFullDoCookies"));
        for name in only_new {
            assert_eq!(old.tcp_ext(name), None, "{name}");
        }
    }

    #[test]
    fn listen_drops_include_overflows_in_every_real_fixture() {
        for (label, netstat, snmp) in REAL {
            let (c, problems) = parse_counters(netstat, snmp);
            assert!(problems.is_empty(), "{label}: {problems:?}");
            let overflows = c.tcp_ext("ListenOverflows").unwrap();
            let drops = c.tcp_ext("ListenDrops").unwrap();
            assert!(drops >= overflows, "{label}: {drops} < {overflows}");
            assert_eq!(c.tcp["MaxConn"], -1, "{label}");
        }
    }

    #[test]
    fn garbage_netstat_is_rejected_and_reported() {
        assert_eq!(
            parse_blocks(NETSTAT_GARBAGE),
            Err(ProcNetError::PrefixMismatch {
                prefix: "IpExt".to_owned(),
                line: 3,
                found: "MPTcpExt".to_owned(),
            })
        );
        let (c, problems) = parse_counters(NETSTAT_GARBAGE, SNMP_6_18);
        assert!(c.tcp_ext.is_empty());
        // snmp is fine and still read.
        assert_eq!(c.tcp["ActiveOpens"], 38);
        assert_eq!(problems.len(), 1, "{problems:?}");
        let p = &problems[0];
        assert!(p.contains("/proc/net/netstat"), "{p}");
        assert!(p.contains("IpExt header on line 3"), "{p}");
        assert!(p.contains("MPTcpExt"), "{p}");
    }

    #[test]
    fn bad_values_are_absent_and_reported() {
        let (c, problems) = parse_counters(NETSTAT_GARBAGE_VALUES, SNMP_6_18_OVERFLOW);
        assert_eq!(c.tcp_ext("ListenOverflows"), None);
        assert_eq!(c.tcp_ext("ListenDrops"), None);
        assert_eq!(c.tcp_ext("TCPReqQFullDrop"), None);
        assert_eq!(c.tcp_ext.len(), 135 - 3);
        assert_eq!(c.tcp_ext("TCPSynRetrans"), Some(18));
        assert_eq!(c.tcp["ActiveOpens"], 8);
        assert_eq!(problems.len(), 3, "{problems:?}");
        for (field, value) in [
            ("ListenOverflows", "\"24x\""),
            ("ListenDrops", "\"-24\""),
            ("TCPReqQFullDrop", "\"18446744073709551616\""),
        ] {
            assert!(
                problems.iter().any(|p| p.contains("/proc/net/netstat")
                    && p.contains(&format!("field {field} "))
                    && p.contains(value)),
                "{field}: {problems:?}"
            );
        }
    }

    #[test]
    fn missing_blocks_are_reported() {
        let (c, problems) = parse_counters("", "");
        assert_eq!(c, Counters::default());
        assert_eq!(
            problems,
            [
                "/proc/net/netstat has no TcpExt block; its TcpExt counters are not shown",
                "/proc/net/snmp has no Tcp block; its Tcp counters are not shown",
            ]
        );
        // Files swapped: each parses, but neither has the block looked for.
        let (c, problems) = parse_counters(SNMP_6_18, NETSTAT_6_18);
        assert_eq!(c, Counters::default());
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn snmp_value_out_of_i64_is_reported() {
        let snmp = "Tcp: MaxConn InSegs\nTcp: -1 9223372036854775808\n";
        let (c, problems) = parse_counters(NETSTAT_6_18, snmp);
        assert_eq!(c.tcp.get("MaxConn"), Some(&-1));
        assert_eq!(c.tcp.get("InSegs"), None);
        assert_eq!(problems.len(), 1);
        assert!(problems[0]
            .contains("/proc/net/snmp: Tcp field InSegs has the value \"9223372036854775808\""));
    }

    #[test]
    fn duplicate_field_keeps_first_and_reports() {
        let (c, problems) = parse_counters("TcpExt: A A\nTcpExt: 1 2\n", SNMP_6_18);
        assert_eq!(c.tcp_ext("A"), Some(1));
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("TcpExt field A appears twice"));
    }

    #[test]
    fn parse_blocks_edge_cases() {
        let ok = |text: &str| parse_blocks(text).map(|b| keys(&b).join(","));
        assert_eq!(ok(""), Ok(String::new()));
        assert_eq!(ok("\n\n  \n"), Ok(String::new()));
        assert_eq!(ok("Tcp:\nTcp:\n"), Ok("Tcp".to_owned()));
        assert_eq!(ok("A: x\r\nA: 1\r\n\r\nB: y\r\nB: 2"), Ok("A,B".to_owned()));
        assert_eq!(
            parse_blocks("TcpExt: a b"),
            Err(ProcNetError::MissingValues {
                prefix: "TcpExt".to_owned(),
                line: 1
            })
        );
        assert_eq!(
            parse_blocks("TcpExt: a b\n\nTcpExt: 1 2"),
            Err(ProcNetError::MissingValues {
                prefix: "TcpExt".to_owned(),
                line: 1
            })
        );
        assert_eq!(
            parse_blocks("Ip: a\nIp: 1\nTcp: a b\nTcp: 1"),
            Err(ProcNetError::CountMismatch {
                prefix: "Tcp".to_owned(),
                line: 3,
                names: 2,
                values: 1
            })
        );
        assert_eq!(
            parse_blocks("Ip: a\nIp: 1\ntrailing garbage"),
            Err(ProcNetError::NoPrefix {
                line: 3,
                excerpt: "trailing garbage".to_owned()
            })
        );
        assert_eq!(
            parse_blocks("Ip: a\n1"),
            Err(ProcNetError::NoPrefix {
                line: 2,
                excerpt: "1".to_owned()
            })
        );
        assert_eq!(
            parse_blocks(": a\n: 1"),
            Err(ProcNetError::NoPrefix {
                line: 1,
                excerpt: ": a".to_owned()
            })
        );
        assert_eq!(
            parse_blocks("Ip: a\nIp: 1\nIp: b\nIp: 2"),
            Err(ProcNetError::DuplicateBlock {
                prefix: "Ip".to_owned(),
                line: 3
            })
        );
        let long = "é".repeat(100);
        match parse_blocks(&long) {
            Err(ProcNetError::NoPrefix { line: 1, excerpt }) => {
                assert_eq!(excerpt.chars().count(), EXCERPT_CHARS)
            }
            other => panic!("{other:?}"),
        }
        let msg = ProcNetError::CountMismatch {
            prefix: "Tcp".to_owned(),
            line: 7,
            names: 15,
            values: 14,
        }
        .to_string();
        assert_eq!(msg, "the Tcp block on lines 7-8 has 15 names but 14 values");
    }

    #[test]
    fn truncating_any_fixture_anywhere_never_panics() {
        let mut texts: Vec<&str> = REAL.iter().flat_map(|(_, n, s)| [*n, *s]).collect();
        texts.push(NETSTAT_GARBAGE);
        texts.push(NETSTAT_GARBAGE_VALUES);
        for text in texts {
            let first_line_end = text.find('\n').unwrap_or(text.len());
            // Every 5th position, plus both sides of every line break and of the first colon
            // (quadratic otherwise: slow in debug builds).
            let cuts = text.char_indices().filter(|&(i, c)| {
                i % 5 == 0
                    || c == '\n'
                    || c == ':'
                    || text[..i].ends_with('\n')
                    || text[..i].ends_with(':')
            });
            for (cut, _) in cuts {
                let head = &text[..cut];
                let _ = parse_blocks(head);
                let (_, as_netstat) = parse_counters(head, SNMP_6_18);
                let (_, as_snmp) = parse_counters(NETSTAT_6_18, head);
                // Cut inside the first header line: a lone header, or nothing. Always reported.
                if cut <= first_line_end {
                    assert!(!as_netstat.is_empty() && !as_snmp.is_empty(), "cut {cut}");
                }
            }
        }
    }

    #[test]
    fn this_machine_proc_net_parses_cleanly() {
        // Skipped where /proc/net is not readable (not Linux, restricted sandbox).
        let (Ok(netstat), Ok(snmp)) = (
            std::fs::read_to_string("/proc/net/netstat"),
            std::fs::read_to_string("/proc/net/snmp"),
        ) else {
            eprintln!("skipped: /proc/net/netstat or /proc/net/snmp not readable");
            return;
        };
        let (c, problems) = parse_counters(&netstat, &snmp);
        assert!(problems.is_empty(), "{problems:?}");
        assert!(c.tcp_ext("ListenOverflows").is_some());
        assert_eq!(c.tcp.get("MaxConn"), Some(&-1));
    }
}
