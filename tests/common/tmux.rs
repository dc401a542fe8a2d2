//! A private tmux server with one detached session running a shell command, for tests that
//! look at sockq's screen as a user would (`send-keys` in, `capture-pane` out).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// Killed on drop, with its socket file (tmux 3.3 leaves that in /tmp/tmux-UID).
pub struct Tmux {
    socket: String,
    session: String,
    socket_path: Option<String>,
}

impl Tmux {
    /// Starts `command` (run by /bin/sh) in a new detached session `session` of `width` x
    /// `height`, on the server `tmux -L socket`. The environment is the test's without
    /// `SOCKQ_*`, `NO_COLOR`, `TMUX` and the variables in `env_remove`.
    pub fn start(
        socket: String,
        session: &str,
        (width, height): (u16, u16),
        command: &str,
        env_remove: &[&str],
    ) -> anyhow::Result<Self> {
        let mut t = Tmux {
            socket,
            session: session.to_string(),
            socket_path: None,
        };
        let (w, h) = (width.to_string(), height.to_string());
        let mut cmd = Command::new("tmux");
        cmd.args(["-f", "/dev/null", "-L", &t.socket])
            .args(["new-session", "-d", "-x", &w, "-y", &h, "-s", session])
            .arg(command)
            .env("SHELL", "/bin/sh")
            .env_remove("NO_COLOR")
            .env_remove("TMUX")
            .stdin(Stdio::null());
        for key in env_remove {
            cmd.env_remove(key);
        }
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SOCKQ_") {
                cmd.env_remove(key);
            }
        }
        let out = cmd
            .output()
            .context("running tmux (the tests that read sockq's screen need tmux installed)")?;
        anyhow::ensure!(
            out.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t.socket_path = t.display("#{socket_path}").ok();
        Ok(t)
    }

    /// Runs `tmux -L socket ARGS`; its stdout.
    pub fn tmux(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .stdin(Stdio::null())
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "tmux {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The visible screen as text.
    pub fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", &self.session])
            .unwrap_or_else(|e| format!("<capture failed: {e:#}>"))
    }

    /// The visible screen with its SGR escape sequences.
    pub fn screen_with_escapes(&self) -> anyhow::Result<String> {
        self.tmux(&["capture-pane", "-p", "-e", "-t", &self.session])
    }

    /// Sends tmux key names (`s`, `Enter`, `Escape`, …).
    pub fn keys(&self, keys: &[&str]) -> anyhow::Result<()> {
        let mut args = vec!["send-keys", "-t", &self.session];
        args.extend_from_slice(keys);
        self.tmux(&args).map(drop)
    }

    /// A tmux format (`#{pane_pid}`, …) expanded for the session.
    pub fn display(&self, format: &str) -> anyhow::Result<String> {
        Ok(self
            .tmux(&["display-message", "-p", "-t", &self.session, format])?
            .trim()
            .to_string())
    }

    /// Polls the screen until `pred` holds; fails with the last screen after `timeout`.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if pred(&s) {
                return Ok(s);
            }
            if start.elapsed() > timeout {
                anyhow::bail!("waited {timeout:?} for {what}; the screen is:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(path) = &self.socket_path {
            let _ = std::fs::remove_file(path);
        }
    }
}
