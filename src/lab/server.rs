//! The lab's demo server: a separate process (`sockq __lab-server`), so that its RLIMIT_NOFILE,
//! fd count and pid are its own and the dashboard attributes the listener to it, as it would a
//! real server. It is started by the lab inside the lab's namespace and dies with it (parent
//! death signal, and end of its stdin).
//!
//! How it serves (a pool of workers, a blocking event loop, a thread per connection) is in
//! `serve`. On EMFILE it sleeps and retries, as naive servers do: the accept queue fills while
//! the CPU idles.
//!
//! Commands on stdin, one per line: `workers N`, `service MS`, `backlog N` (listen() again:
//! the backlog in force becomes min(N, somaxconn now)), `pause`, `resume`, `fdlimit N`,
//! `leak 0|1` (keep connections instead of closing them), `close-leaked` (close every kept
//! connection).

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::{bail, Context};
use socket2::{Domain, Socket, Type};

use super::serve::{self, Shared};
pub use super::serve::{Mode, MAX_WORKERS};

/// How the demo server starts (the `__lab-server` command line carries it to the child).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// listen() backlog.
    pub backlog: i32,
    /// Worker threads calling accept().
    pub workers: usize,
    /// Service time per connection, in milliseconds.
    pub service_ms: u64,
    /// RLIMIT_NOFILE (soft limit) of the server.
    pub fd_limit: Option<u64>,
    /// Never close accepted connections (an fd leak).
    pub leak: bool,
    /// TCP_DEFER_ACCEPT seconds (the final ACK is only taken with data, as nginx's `deferred`).
    pub defer_accept: Option<u32>,
    /// Start with accept() paused.
    pub paused: bool,
    /// How it serves.
    pub mode: Mode,
    /// Bytes of each answer (3: `OK\n`).
    pub response_bytes: usize,
    /// SO_SNDBUF of the listener, inherited by its connections (it also stops the kernel from
    /// growing their send buffers): a bounded Send-Q, so a large answer blocks the writer.
    pub sndbuf: Option<usize>,
}

/// Sets TCP_DEFER_ACCEPT, which neither socket2 nor nix wraps.
#[allow(unsafe_code)] // the one FFI call, see the SAFETY comment
fn set_defer_accept(s: &Socket, secs: u32) -> std::io::Result<()> {
    let v: nix::libc::c_int = nix::libc::c_int::try_from(secs).unwrap_or(nix::libc::c_int::MAX);
    // SAFETY: setsockopt with a valid open fd, a pointer to a live c_int and its exact size.
    let rc = unsafe {
        nix::libc::setsockopt(
            s.as_raw_fd(),
            nix::libc::IPPROTO_TCP,
            nix::libc::TCP_DEFER_ACCEPT,
            (&v as *const nix::libc::c_int).cast(),
            std::mem::size_of::<nix::libc::c_int>() as nix::libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Sets the RLIMIT_NOFILE soft limit (the hard limit stays, so the limit can be raised again
/// without CAP_SYS_RESOURCE).
fn set_nofile(limit: u64) -> anyhow::Result<()> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).context("reading RLIMIT_NOFILE")?;
    if limit > hard {
        anyhow::bail!("cannot raise the fd limit to {limit}: above the hard limit {hard}");
    }
    setrlimit(Resource::RLIMIT_NOFILE, limit, hard)
        .with_context(|| format!("setting RLIMIT_NOFILE to {limit}"))
}

/// Main of the `__lab-server` process.
pub fn run(args: ServerConfig) -> anyhow::Result<()> {
    // Die with the lab, whatever happens to it.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .context("prctl(PDEATHSIG)")?;
    let _ = nix::sys::prctl::set_name(c"lab-server");
    let listener = Socket::new(Domain::for_address(args.listen), Type::STREAM, None)?;
    listener.set_reuse_address(true)?;
    listener
        .bind(&args.listen.into())
        .with_context(|| format!("binding {}", args.listen))?;
    if let Some(secs) = args.defer_accept {
        set_defer_accept(&listener, secs).context("TCP_DEFER_ACCEPT")?;
    }
    if let Some(b) = args.sndbuf {
        listener.set_send_buffer_size(b).context("SO_SNDBUF")?;
    }
    listener.listen(args.backlog)?;
    listener.set_nonblocking(true)?;
    if let Some(l) = args.fd_limit {
        set_nofile(l)?;
    }
    let listener = Arc::new(listener);
    let shared = Arc::new(Shared::new(
        args.workers,
        args.service_ms,
        args.paused,
        args.leak,
        args.response_bytes,
    ));
    serve::start(args.mode, &listener, &shared)?;
    println!("ready");
    std::io::stdout().flush()?;
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let mut it = line.split_whitespace();
        let (Some(cmd), arg) = (it.next(), it.next().and_then(|a| a.parse::<u64>().ok())) else {
            continue;
        };
        let result: anyhow::Result<()> = match (cmd, arg) {
            ("workers", Some(n)) => {
                let n = usize::try_from(n).unwrap_or(MAX_WORKERS).min(MAX_WORKERS);
                shared.workers.store(n, Ordering::Relaxed);
                match args.mode {
                    Mode::Pool => serve::ensure_workers(&listener, &shared),
                    _ => Ok(()),
                }
            }
            ("service", Some(ms)) => {
                shared.service_ms.store(ms, Ordering::Relaxed);
                Ok(())
            }
            ("backlog", Some(b)) => listener
                .listen(i32::try_from(b).unwrap_or(i32::MAX))
                .context("listen() again"),
            ("pause", _) => {
                shared.paused.store(true, Ordering::Relaxed);
                Ok(())
            }
            ("resume", _) => {
                shared.paused.store(false, Ordering::Relaxed);
                Ok(())
            }
            ("fdlimit", Some(n)) => set_nofile(n),
            ("leak", Some(on)) => {
                shared.leak.store(on != 0, Ordering::Relaxed);
                Ok(())
            }
            ("close-leaked", _) => {
                shared.close_leaked();
                Ok(())
            }
            _ => Err(anyhow::anyhow!("unknown command {line:?}")),
        };
        // A failed command is reported to the lab (on stdout) and the server keeps serving.
        let mut out = std::io::stdout().lock();
        let _ = match result {
            Ok(()) => writeln!(out, "ok {line}"),
            Err(e) => writeln!(out, "error {line}: {e:#}"),
        };
        let _ = out.flush();
    }
    // stdin closed: the lab is gone.
    Ok(())
}

/// The lab's handle on its server process.
pub struct ServerProcess {
    child: Child,
    handle: ServerHandle,
    last_error: Arc<std::sync::Mutex<Option<String>>>,
}

/// A cloneable way to send commands to the server, usable from background threads.
#[derive(Clone)]
pub struct ServerHandle {
    stdin: Arc<std::sync::Mutex<ChildStdin>>,
}

impl ServerHandle {
    /// Sends one command line.
    pub fn send(&self, cmd: &str) -> anyhow::Result<()> {
        let mut stdin = self
            .stdin
            .lock()
            .map_err(|_| anyhow::anyhow!("the lab server handle is poisoned"))?;
        writeln!(stdin, "{cmd}").context("talking to the lab server")?;
        stdin.flush()?;
        Ok(())
    }
}

impl ServerProcess {
    /// Starts `sockq __lab-server` (this binary) with `args`; waits for it to listen.
    pub fn start(args: &ServerConfig) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding sockq's own executable")?;
        let mut cmd = Command::new(exe);
        cmd.arg("__lab-server")
            .arg("--listen")
            .arg(args.listen.to_string())
            .arg("--backlog")
            .arg(args.backlog.to_string())
            .arg("--workers")
            .arg(args.workers.to_string())
            .arg("--service-ms")
            .arg(args.service_ms.to_string());
        if let Some(l) = args.fd_limit {
            cmd.arg("--fd-limit").arg(l.to_string());
        }
        if args.leak {
            cmd.arg("--leak");
        }
        if let Some(d) = args.defer_accept {
            cmd.arg("--defer-accept").arg(d.to_string());
        }
        if args.paused {
            cmd.arg("--paused");
        }
        if let Some(b) = args.sndbuf {
            cmd.arg("--sndbuf").arg(b.to_string());
        }
        cmd.arg("--mode")
            .arg(args.mode.name())
            .arg("--response-bytes")
            .arg(args.response_bytes.to_string());
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // Its stderr would draw over the dashboard; its errors come back on stdout.
            .stderr(Stdio::null())
            .spawn()
            .context("starting the lab server")?;
        let stdin = child.stdin.take().context("lab server stdin")?;
        let stdout = child.stdout.take().context("lab server stdout")?;
        let mut reader = std::io::BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line.trim() != "ready" {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the lab server did not start (said {:?})", line.trim());
        }
        let last_error = Arc::new(std::sync::Mutex::new(None));
        let le = last_error.clone();
        std::thread::Builder::new()
            .name("lab-server-out".into())
            .spawn(move || {
                for line in reader.lines().map_while(Result::ok) {
                    if let Some(e) = line.strip_prefix("error ") {
                        if let Ok(mut l) = le.lock() {
                            *l = Some(e.to_string());
                        }
                    }
                }
            })?;
        Ok(Self {
            child,
            handle: ServerHandle {
                stdin: Arc::new(std::sync::Mutex::new(stdin)),
            },
            last_error,
        })
    }

    /// A handle for background threads.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// The last command the server could not carry out, and why.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|l| l.clone())
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends one command line.
    pub fn send(&mut self, cmd: &str) -> anyhow::Result<()> {
        self.handle.send(cmd)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
