//! Process-wide plumbing the commands share: the stop flag set by signals, the colour choice,
//! and writing to stdout. Sits with `cmd`, above every layer it is handed to.

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// A flag set on SIGINT, SIGTERM, SIGHUP and SIGQUIT; every loop checks it between waits, so
/// each of them ends sockq cleanly (the dashboard restores the terminal; SIGQUIT's default
/// action, a core dump, would leave it raw).
pub fn stop_flag() -> std::io::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGQUIT,
    ] {
        signal_hook::flag::register(sig, flag.clone())?;
    }
    Ok(flag)
}

/// Colours are allowed unless `--no-color` was given or NO_COLOR is set to anything but the
/// empty string (https://no-color.org).
pub fn color_allowed(no_color_flag: bool) -> bool {
    !(no_color_flag || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()))
}

/// Writes `text` to stdout with a final newline.
pub fn write_stdout(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Says on stderr that a sample failed and became a gap.
pub fn report_gap(e: &crate::model::SampleError) {
    let text = e.to_string();
    eprintln!(
        "sockq: sample failed (recorded as a gap): {}",
        crate::model::labels::terminal_safe(&text)
    );
}
