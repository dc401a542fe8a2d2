//! The listener table of one frame: which listeners it lists, in which order, and the rows of
//! those that are drawn. A frame at 10,000 listeners shows about 40 of them, so the order is
//! computed from a few numbers per listener (no [`Row`], no allocation per listener, no string
//! comparison where the listeners arrive already ordered by endpoint, as the engine gives them)
//! and a row is built only for a listener that is drawn or asked for. The order is the one
//! documented on [`SortBy`]: ties by endpoint, then as the listeners come (the tick's current
//! and newly gone listeners, the older gone ones, the UNIX ones); gone listeners last.
//! Pure: no terminal, no I/O.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;

use super::rows::{fill, tcp_peak, unix_row, Row, SortBy};
use crate::engine::Engine;
use crate::model::{Filter, ListenerKey, ListenerTick, Owners, TcpListener, Tick, UnixListener};

/// What the table lists and how: the dashboard's sort, `/` filter, `--port`/`--process`
/// selection and UNIX toggle.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// Sort order.
    pub sort: SortBy,
    /// The `/` search text (endpoint or process name contains it, or the pid is it).
    pub search: &'a str,
    /// `--port`/`--process`.
    pub select: &'a Filter,
    /// UNIX listeners listed too.
    pub unix: bool,
    /// What the last listing learnt of the endpoint order, if it is kept.
    pub memo: Option<&'a OrderMemo>,
}

/// Whether the last listing's listeners came in endpoint order, and which they were (the same
/// sockets, gone marks and endpoint strings): a frame whose listeners are the same learns it
/// without reading every endpoint. Holding the strings keeps their addresses theirs.
#[derive(Clone, Default)]
pub struct OrderMemo(RefCell<Option<Memo>>);

#[derive(Clone)]
struct Memo {
    seen: Vec<(ListenerKey, bool, Arc<str>)>,
    sorted: bool,
}

impl std::fmt::Debug for OrderMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let memo = self.0.borrow();
        let n = memo.as_ref().map(|m| m.seen.len());
        f.debug_tuple("OrderMemo").field(&n).finish()
    }
}

impl OrderMemo {
    /// True when `items` come ordered by (gone, endpoint), as the engine lists them.
    fn in_endpoint_order(&self, items: &[Item<'_>]) -> bool {
        let same = |m: &Memo| {
            m.seen.len() == items.len()
                && m.seen.iter().zip(items).all(|((key, gone, e), i)| {
                    *key == i.key && *gone == i.gone && i.shared.is_some_and(|s| Arc::ptr_eq(s, e))
                })
        };
        if let Some(m) = self.0.borrow().as_ref().filter(|m| same(m)) {
            return m.sorted;
        }
        let sorted = in_endpoint_order(items);
        let seen: Option<Vec<_>> = items
            .iter()
            .map(|i| i.shared.map(|s| (i.key, i.gone, s.clone())))
            .collect();
        *self.0.borrow_mut() = seen.map(|seen| Memo { seen, sorted });
        sorted
    }
}

/// True when `items` come ordered by (gone, endpoint).
fn in_endpoint_order(items: &[Item<'_>]) -> bool {
    items.is_sorted_by(|a, b| (a.gone, &a.endpoint) <= (b.gone, &b.endpoint))
}

/// Where a listed listener's numbers are.
#[derive(Debug, Clone, Copy)]
enum Src {
    /// `tick.listeners[i]`.
    Tick(usize),
    /// The `i`th of the listeners that went away before the latest tick.
    Gone(usize),
    /// `tick.snapshot.unix_listeners[i]`.
    Unix(usize),
}

/// The listeners of the table in display order, and what its title and column widths need to
/// know of all of them.
pub struct Listing<'e> {
    engine: &'e Engine,
    tick: Option<&'e Tick>,
    /// Listeners that went away before the latest tick (fetched only when there are some).
    gone: Vec<ListenerTick>,
    order: Vec<(ListenerKey, Src)>,
    total: usize,
    owner_unknown: bool,
    endpoint_chars: usize,
}

/// One listener while the order is made.
struct Item<'a> {
    key: ListenerKey,
    src: Src,
    gone: bool,
    endpoint: Cow<'a, str>,
    /// The engine's string of a TCP listener's endpoint.
    shared: Option<&'a Arc<str>>,
}

/// Sort key of a listener under one [`SortBy`], compared ascending.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Primary<'a> {
    Numbers([u64; 3]),
    Name(&'a str),
}

/// `x` as a number that sorts as [`f64::total_cmp`] does, largest first.
fn descending(x: f64) -> u64 {
    let b = x.to_bits();
    !(if b >> 63 == 1 { !b } else { b | 1 << 63 })
}

/// `x` as two numbers that sort largest first, `None` last.
fn descending_opt(x: Option<u64>) -> [u64; 2] {
    x.map_or([1, 0], |v| [0, !v])
}

impl<'e> Listing<'e> {
    /// The table of `engine`'s latest tick under `opts`.
    pub fn new(engine: &'e Engine, opts: Options<'_>) -> Self {
        let mut out = Listing {
            engine,
            tick: engine.latest(),
            gone: Vec::new(),
            order: Vec::new(),
            total: 0,
            owner_unknown: false,
            endpoint_chars: 0,
        };
        let Some(tick) = out.tick else {
            return out;
        };
        // Only the older gone listeners need the engine's histories walked.
        let newly_gone = tick.listeners.iter().filter(|l| l.gone).count();
        let gone = if tick.gone_listeners > newly_gone {
            engine.gone_listeners()
        } else {
            Vec::new()
        };
        let unix = tick
            .snapshot
            .unix_listeners
            .as_deref()
            .filter(|_| opts.unix);
        let left_out = engine.left_out();
        out.total = tick.listeners.len() + gone.len() + left_out.tcp;
        if let Some(u) = unix {
            out.total += u.len() + left_out.unix;
        }
        let items = out.items(tick, &gone, unix.unwrap_or_default(), opts);
        out.endpoint_chars = longest(&items);
        out.owner_unknown = out.any_owner_unknown(tick, unix.unwrap_or_default(), &items);
        let in_order = match opts.memo {
            Some(memo) => memo.in_endpoint_order(&items),
            None => in_endpoint_order(&items),
        };
        out.order = out.sorted(&items, in_order, &gone, unix.unwrap_or_default(), opts.sort);
        drop(items);
        out.gone = gone;
        out
    }

    /// The listeners the filters keep, as they come.
    fn items<'a>(
        &self,
        tick: &'a Tick,
        gone: &'a [ListenerTick],
        unix: &'a [UnixListener],
        opts: Options<'_>,
    ) -> Vec<Item<'a>> {
        let tcp = |src, lt: &'a ListenerTick| Item {
            key: lt.key,
            src,
            gone: lt.gone,
            endpoint: Cow::Borrowed(&lt.endpoint),
            shared: Some(&lt.endpoint),
        };
        let mut items: Vec<Item<'a>> = (tick.listeners.iter().enumerate())
            .map(|(i, lt)| tcp(Src::Tick(i), lt))
            .chain(gone.iter().enumerate().map(|(i, lt)| tcp(Src::Gone(i), lt)))
            .chain(unix.iter().enumerate().map(|(i, u)| Item {
                key: unix_key(u),
                src: Src::Unix(i),
                gone: false,
                endpoint: unix_endpoint(u),
                shared: None,
            }))
            .collect();
        if opts.select.is_empty() && opts.search.is_empty() {
            return items;
        }
        let unknown = Owners::Unknown {
            reason: String::new(),
        };
        // The pid as the search text would print it, when it is one.
        let pid: Option<u32> = opts
            .search
            .parse()
            .ok()
            .filter(|p: &u32| p.to_string() == opts.search);
        items.retain(|i| {
            let (port, owners) = match i.src {
                Src::Unix(n) => (None, &unix[n].owners),
                _ => self
                    .listener(i.key)
                    .map_or((None, &unknown), |l| (Some(l.port), &l.owners)),
            };
            let search = opts.search;
            opts.select.matches(port, owners)
                && (search.is_empty()
                    || i.endpoint.contains(search)
                    || owners
                        .processes()
                        .iter()
                        .any(|p| p.comm.contains(search) || Some(p.pid) == pid))
        });
        items
    }

    /// True when a listed listener that is not gone has no known owner.
    fn any_owner_unknown(&self, tick: &Tick, unix: &[UnixListener], items: &[Item<'_>]) -> bool {
        let unknown = |o: &Owners| matches!(o, Owners::Unknown { .. });
        // A current listener's reading is the sample's (the engine keeps the latest): when the
        // sample knows every owner, no TCP listener need be looked up.
        let tcp = tick
            .snapshot
            .tcp_listeners
            .iter()
            .any(|l| unknown(&l.owners));
        items.iter().filter(|i| !i.gone).any(|i| match i.src {
            Src::Unix(n) => unknown(&unix[n].owners),
            _ => tcp && self.listener(i.key).is_none_or(|l| unknown(&l.owners)),
        })
    }

    /// The items' order under `sort`: by endpoint (`in_order`: they come so already), then by
    /// the sort's own key, gone listeners last; a stable sort keeps the rest of the order.
    fn sorted(
        &self,
        items: &[Item<'_>],
        in_order: bool,
        gone: &[ListenerTick],
        unix: &[UnixListener],
        sort: SortBy,
    ) -> Vec<(ListenerKey, Src)> {
        let mut by_endpoint: Vec<usize> = (0..items.len()).collect();
        if !in_order {
            by_endpoint.sort_by(|&a, &b| {
                let (a, b) = (&items[a], &items[b]);
                a.gone
                    .cmp(&b.gone)
                    .then_with(|| a.endpoint.cmp(&b.endpoint))
            });
        }
        let mut keyed: Vec<(bool, Primary<'_>, usize)> = by_endpoint
            .into_iter()
            .map(|n| {
                let i = &items[n];
                (i.gone, self.primary(i.src, i.key, gone, unix, sort), n)
            })
            .collect();
        keyed.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        keyed
            .into_iter()
            .map(|(_, _, n)| (items[n].key, items[n].src))
            .collect()
    }

    /// The key `sort` orders a listener by (before its endpoint).
    fn primary<'a>(
        &'a self,
        src: Src,
        key: ListenerKey,
        gone: &'a [ListenerTick],
        unix: &'a [UnixListener],
        sort: SortBy,
    ) -> Primary<'a> {
        let lt = match src {
            Src::Tick(n) => self.tick.map(|t| &t.listeners[n]),
            Src::Gone(n) => Some(&gone[n]),
            Src::Unix(_) => None,
        };
        let u = match src {
            Src::Unix(n) => Some(&unix[n]),
            _ => None,
        };
        // Ordering by fill needs only the tick's numbers: no lookup per listener.
        let l = lt
            .filter(|_| sort != SortBy::Fill)
            .and_then(|_| self.listener(key));
        let n = |[a, b, c]: [u64; 3]| Primary::Numbers([a, b, c]);
        match sort {
            SortBy::Fill => {
                let (peak, depth, backlog) = match (lt, u) {
                    (Some(lt), _) => (tcp_peak(lt), lt.depth, lt.backlog),
                    (_, Some(u)) => (u.accept_queue, u.accept_queue, u.backlog),
                    _ => (0, 0, 0),
                };
                n([descending(fill(peak.max(depth), backlog)), 0, 0])
            }
            SortBy::Drops => {
                let per_s = lt.and_then(|lt| lt.drops_per_s).unwrap_or(-1.0);
                let [a, b] = descending_opt(l.and_then(|l| l.drops));
                n([descending(per_s), a, b])
            }
            SortBy::SynRecv => {
                let [a, b] = descending_opt(l.map(|l| l.syn_recv));
                n([a, b, 0])
            }
            SortBy::Port => n([
                u64::from(u.is_some()),
                l.map_or(u64::from(u32::MAX), |l| u64::from(l.port)),
                0,
            ]),
            SortBy::Process => {
                let owners = u.map(|u| &u.owners).or(l.map(|l| &l.owners));
                Primary::Name(
                    owners
                        .and_then(|o| o.processes().first())
                        .map_or("", |p| &p.comm),
                )
            }
        }
    }

    /// A TCP listener's latest reading (the engine keeps it, current or gone).
    fn listener(&self, key: ListenerKey) -> Option<&'e TcpListener> {
        self.engine.listener(&key).map(|h| &h.listener)
    }

    /// How many listeners are listed.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True when none is.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// How many listeners there are before the filters (the engine's left-out ones included).
    pub fn total(&self) -> usize {
        self.total
    }

    /// A listed listener that is not gone has no known owner.
    pub fn owner_unknown(&self) -> bool {
        self.owner_unknown
    }

    /// The longest endpoint listed, in characters.
    pub fn endpoint_chars(&self) -> usize {
        self.endpoint_chars
    }

    /// The listener at place `i`.
    pub fn key(&self, i: usize) -> Option<ListenerKey> {
        self.order.get(i).map(|(k, _)| *k)
    }

    /// Every listed listener, in order.
    pub fn keys(&self) -> Vec<ListenerKey> {
        self.order.iter().map(|(k, _)| *k).collect()
    }

    /// The place of a listener, if it is listed.
    pub fn position(&self, key: ListenerKey) -> Option<usize> {
        self.order.iter().position(|(k, _)| *k == key)
    }

    /// The row at place `i`.
    pub fn row(&self, i: usize) -> Option<Row> {
        let tick = self.tick?;
        let (_, src) = *self.order.get(i)?;
        Some(match src {
            Src::Tick(n) => self.tcp_row(tick, &tick.listeners[n]),
            Src::Gone(n) => self.tcp_row(tick, &self.gone[n]),
            Src::Unix(n) => unix_row(&tick.snapshot.unix_listeners.as_ref()?[n]),
        })
    }

    /// Every listed row, in order.
    pub fn rows(&self) -> Vec<Row> {
        (0..self.len()).filter_map(|i| self.row(i)).collect()
    }

    fn tcp_row(&self, tick: &Tick, lt: &ListenerTick) -> Row {
        let history = self.engine.listener(&lt.key);
        let now_ns = tick.snapshot.time.monotonic_ns;
        let gone_s = history
            .filter(|_| lt.gone)
            .map(|h| (now_ns.saturating_sub(h.last_seen_ns) + 500_000_000) / 1_000_000_000);
        Row::from_tcp(lt, history.map(|h| &h.listener), gone_s)
    }
}

/// The most characters of an endpoint. A string has no more characters than bytes, and its
/// length is beside the pointer: only one longer (in bytes) than the longest so far is read.
fn longest(items: &[Item<'_>]) -> usize {
    items.iter().fold(0, |most, i| {
        if i.endpoint.len() > most {
            most.max(i.endpoint.chars().count())
        } else {
            most
        }
    })
}

/// A UNIX listener's key: its inode, cookie 0.
pub(super) fn unix_key(u: &UnixListener) -> ListenerKey {
    ListenerKey {
        inode: u.inode,
        cookie: 0,
    }
}

/// A UNIX listener's endpoint: its path or name, or its inode when unnamed.
pub(super) fn unix_endpoint(u: &UnixListener) -> Cow<'_, str> {
    if u.name.is_empty() {
        Cow::Owned(format!("unix:(unnamed {})", u.inode))
    } else {
        Cow::Borrowed(&u.name)
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::engine::EngineConfig;
    use crate::model::testing::{process, snapshot, tcp_listener};
    use crate::model::{CollectorStats, Sample};

    /// The rows as the dashboard made them before `Listing`: a row for every listener, sorted
    /// by comparing rows. The reference the listing must agree with.
    fn reference(engine: &Engine, opts: Options<'_>) -> (Vec<Row>, usize) {
        let Some(tick) = engine.latest() else {
            return (Vec::new(), 0);
        };
        let by_key: std::collections::HashMap<ListenerKey, &TcpListener> = tick
            .snapshot
            .tcp_listeners
            .iter()
            .map(|l| (ListenerKey::from(l), l))
            .collect();
        let now_ns = tick.snapshot.time.monotonic_ns;
        let mut rows: Vec<Row> = (tick.listeners.iter())
            .chain(engine.gone_listeners().iter())
            .map(|lt| {
                let history = engine.listener(&lt.key);
                let l = (by_key.get(&lt.key).copied()).or_else(|| history.map(|h| &h.listener));
                let gone_s = history
                    .filter(|_| lt.gone)
                    .map(|h| (now_ns.saturating_sub(h.last_seen_ns) + 500_000_000) / 1_000_000_000);
                Row::from_tcp(lt, l, gone_s)
            })
            .collect();
        let left_out = engine.left_out();
        let mut total = rows.len() + left_out.tcp;
        if opts.unix {
            rows.extend(tick.snapshot.unix_listeners.iter().flatten().map(unix_row));
            total = rows.len() + left_out.tcp + left_out.unix;
        }
        rows.retain(|r| opts.select.matches(r.port, &r.owners));
        let f = opts.search;
        if !f.is_empty() {
            rows.retain(|r| {
                r.endpoint.contains(f)
                    || (r.owners.processes().iter())
                        .any(|p| p.comm.contains(f) || p.pid.to_string() == f)
            });
        }
        let cmp_f = |a: f64, b: f64| b.total_cmp(&a);
        match opts.sort {
            SortBy::Fill => rows.sort_by(|a, b| {
                cmp_f(a.peak_fill(), b.peak_fill()).then(a.endpoint.cmp(&b.endpoint))
            }),
            SortBy::Drops => rows.sort_by(|a, b| {
                cmp_f(a.drops_per_s.unwrap_or(-1.0), b.drops_per_s.unwrap_or(-1.0))
                    .then(b.drops.cmp(&a.drops))
                    .then(a.endpoint.cmp(&b.endpoint))
            }),
            SortBy::SynRecv => rows.sort_by(|a, b| {
                (b.syn_recv.map(|s| s.0))
                    .cmp(&a.syn_recv.map(|s| s.0))
                    .then(a.endpoint.cmp(&b.endpoint))
            }),
            SortBy::Port => rows.sort_by_key(|r| {
                let port = r.port.map_or(u32::MAX, u32::from);
                (r.unix, port, r.endpoint.clone())
            }),
            SortBy::Process => rows.sort_by(|a, b| {
                (a.process_name().cmp(b.process_name())).then(a.endpoint.cmp(&b.endpoint))
            }),
        }
        rows.sort_by_key(|r| r.gone);
        (rows, total)
    }

    fn v4(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    /// Listeners with ties in every sort: an SO_REUSEPORT pair (one endpoint, two sockets),
    /// equal fills, equal and unknown owners, IPv6, drops that move between samples.
    fn listeners(t: u64) -> Vec<TcpListener> {
        let nginx = |pid| process(pid, "nginx", Some(10), Some(1024));
        let unknown = Owners::Unknown {
            reason: "not root".into(),
        };
        vec![
            tcp_listener(8080).addr(v4(2)).identity(1, 1).queue(5, 10),
            tcp_listener(8080)
                .addr(v4(2))
                .identity(2, 2)
                .queue(5, 10)
                .syn_recv(1, None),
            tcp_listener(8080).addr(v4(1)).identity(3, 3).queue(1, 2),
            tcp_listener(80)
                .identity(4, 4)
                .owner(nginx(42))
                .drops(Some(7 * t)),
            tcp_listener(80)
                .addr(v4(3))
                .identity(5, 5)
                .owner(nginx(43))
                .drops(Some(50)),
            tcp_listener(443)
                .addr(IpAddr::V6(Ipv6Addr::LOCALHOST))
                .identity(6, 6)
                .queue(0, 0),
            tcp_listener(22)
                .identity(7, 7)
                .owners(unknown)
                .syn_recv(3, None),
            tcp_listener(5432)
                .identity(8, 8)
                .owner(process(420, "postgres", None, None)),
            tcp_listener(9000)
                .identity(9, 9)
                .queue(11, 10)
                .drops(Some(t)),
            tcp_listener(9001).identity(10, 10).syn_recv(3, None),
        ]
        .into_iter()
        .map(|b| b.build())
        .collect()
    }

    fn sample(tcp: Vec<TcpListener>, t: u64, unix: Option<Vec<UnixListener>>) -> Sample {
        let mut snapshot = snapshot(tcp, t * 1_000_000_000);
        snapshot.unix_listeners = unix;
        Sample {
            snapshot,
            depth_ranges: vec![],
            collector: CollectorStats::default(),
        }
    }

    fn unix(name: &str, inode: u64, depth: u32) -> UnixListener {
        UnixListener {
            name: name.into(),
            inode,
            accept_queue: depth,
            backlog: 16,
            owners: Owners::Known {
                processes: vec![process(77, "php-fpm", None, None)].into(),
            },
        }
    }

    /// Three samples: listener 4 goes in the second (gone before the latest tick), 10 in the
    /// third (gone in it); the third has UNIX listeners, one unnamed.
    fn engine() -> Engine {
        let mut e = Engine::new(EngineConfig::default());
        let all = listeners(1);
        e.ingest(sample(all, 1, None));
        let without = |t, keep: &dyn Fn(&TcpListener) -> bool| {
            listeners(t).into_iter().filter(|l| keep(l)).collect()
        };
        e.ingest(sample(without(2, &|l| l.inode != 4), 2, None));
        let sockets = vec![
            unix("/run/b.sock", 900, 3),
            unix("", 901, 0),
            unix("@a", 902, 16),
        ];
        let third = without(3, &|l| l.inode != 4 && l.inode != 10);
        e.ingest(sample(third, 3, Some(sockets)));
        e
    }

    #[test]
    fn the_listing_orders_and_filters_as_sorting_every_row_did() {
        let engine = engine();
        assert!(
            engine.gone_listeners().len() == 1,
            "one listener gone before the tick"
        );
        let ports = Filter {
            ports: vec![80, 8080],
            process: None,
        };
        let nginx = Filter {
            ports: vec![],
            process: Some("nginx".into()),
        };
        let sorts = [
            SortBy::Fill,
            SortBy::Drops,
            SortBy::SynRecv,
            SortBy::Port,
            SortBy::Process,
        ];
        let mut checked = 0;
        let memo = OrderMemo::default();
        for sort in sorts {
            for unix in [false, true] {
                for select in [&Filter::default(), &ports, &nginx] {
                    for search in ["", "10.0.0", "nginx", "42", "042", "sock", "none"] {
                        // Without a memo, with one learning, and with one that knows.
                        for memo in [None, Some(&memo), Some(&memo)] {
                            let opts = Options {
                                sort,
                                search,
                                select,
                                unix,
                                memo,
                            };
                            let (want, total) = reference(&engine, opts);
                            let got = Listing::new(&engine, opts);
                            let what = format!(
                                "{sort:?} unix {unix} {select:?} search {search:?} {memo:?}"
                            );
                            assert_eq!(got.rows(), want, "{what}");
                            assert_eq!(got.total(), total, "{what}");
                            let unknown = want
                                .iter()
                                .any(|r| matches!(r.owners, Owners::Unknown { .. }) && !r.gone);
                            assert_eq!(got.owner_unknown(), unknown, "{what}");
                            let longest = want.iter().map(|r| r.endpoint.chars().count()).max();
                            assert_eq!(got.endpoint_chars(), longest.unwrap_or(0), "{what}");
                            let keys: Vec<ListenerKey> = want.iter().map(|r| r.key).collect();
                            assert_eq!(got.keys(), keys, "{what}");
                            for (i, k) in keys.iter().enumerate() {
                                assert_eq!(got.position(*k), Some(i), "{what}");
                            }
                            checked += usize::from(!want.is_empty());
                        }
                    }
                }
            }
        }
        assert!(
            checked > 100,
            "most combinations list something ({checked})"
        );
    }

    #[test]
    fn the_sort_keys_order_as_the_comparisons_they_replace() {
        let xs = [
            f64::NEG_INFINITY,
            -2.5,
            -0.0,
            0.0,
            1e-300,
            0.5,
            1.0,
            7.0,
            f64::INFINITY,
        ];
        for a in xs {
            for b in xs {
                assert_eq!(
                    descending(a).cmp(&descending(b)),
                    b.total_cmp(&a),
                    "{a} {b}"
                );
            }
        }
        let os = [None, Some(0), Some(1), Some(u64::MAX)];
        for a in os {
            for b in os {
                assert_eq!(descending_opt(a).cmp(&descending_opt(b)), b.cmp(&a));
            }
        }
    }

    #[test]
    fn the_longest_endpoint_is_counted_in_characters_not_bytes() {
        let item = |e: &'static str| Item {
            key: ListenerKey {
                inode: 1,
                cookie: 0,
            },
            src: Src::Unix(0),
            gone: false,
            endpoint: Cow::Borrowed(e),
            shared: None,
        };
        // "ééééé" is 10 bytes and 5 characters.
        for names in [["ééééé", "abcdefg", "ab"], ["abcdefg", "ééééé", "ab"]] {
            assert_eq!(longest(&names.map(item)), 7, "{names:?}");
        }
        assert_eq!(longest(&["ab", "ééééé"].map(item)), 5);
        assert_eq!(longest(&[]), 0);
    }

    #[test]
    fn a_memo_is_not_fooled_by_the_same_sockets_at_other_endpoints() {
        // Sockets 0, 1, 2; 1 goes in the second sample, 2 in the third: the tick lists 0 and 2
        // (newly gone), then comes 1 (gone before). With 1 at 10.0.0.3 the gone ones come in
        // endpoint order; at 10.0.0.1 they do not, and 1 must be listed before 2.
        let engine = |addr_of_1: u8| {
            let mut e = Engine::new(EngineConfig::default());
            let l = |n: u8| {
                let last = [9, addr_of_1, 2][usize::from(n)];
                let port = 8000 + u16::from(n);
                let l = tcp_listener(port).addr(v4(last));
                l.identity(u64::from(n) + 1, 1).queue(0, 10).build()
            };
            let upto = |t: u64, n: u8| {
                sample(
                    (0..n).map(l).filter(|l| t < 2 || l.inode != 2).collect(),
                    t,
                    None,
                )
            };
            e.ingest(upto(1, 3));
            e.ingest(upto(2, 3));
            e.ingest(upto(3, 1));
            e
        };
        let (sorted, unsorted) = (engine(3), engine(1));
        let select = Filter::default();
        let memo = OrderMemo::default();
        let opts = Options {
            sort: SortBy::Fill,
            search: "",
            select: &select,
            unix: false,
            memo: Some(&memo),
        };
        for engine in [&sorted, &unsorted, &sorted, &unsorted] {
            let want: Vec<ListenerKey> = reference(engine, opts).0.iter().map(|r| r.key).collect();
            assert_eq!(want.len(), 3);
            assert_eq!(Listing::new(engine, opts).keys(), want);
        }
        let key = |inode| ListenerKey { inode, cookie: 1 };
        assert_eq!(
            Listing::new(&unsorted, opts).keys(),
            [key(1), key(2), key(3)]
        );
        assert_eq!(Listing::new(&sorted, opts).keys(), [key(1), key(3), key(2)]);
    }

    #[test]
    fn before_the_first_sample_nothing_is_listed() {
        let engine = Engine::new(EngineConfig::default());
        let select = Filter::default();
        let opts = Options {
            sort: SortBy::Fill,
            search: "",
            select: &select,
            unix: true,
            memo: None,
        };
        let l = Listing::new(&engine, opts);
        assert!(l.is_empty());
        assert_eq!((l.total(), l.row(0), l.key(0)), (0, None, None));
    }
}
