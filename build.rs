//! Puts the git revision and the build date into `sockq --version`.

use std::process::Command;

fn main() {
    let revision = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown revision".into());
    // SOURCE_DATE_EPOCH makes builds reproducible; otherwise the day of the build.
    let date = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .map(|epoch| {
            Command::new("date")
                .args(["-u", "-d", &format!("@{epoch}"), "+%Y-%m-%d"])
                .output()
        })
        .unwrap_or_else(|| Command::new("date").args(["-u", "+%Y-%m-%d"]).output())
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown date".into());
    println!("cargo:rustc-env=SOCKQ_GIT_REVISION={revision}");
    println!("cargo:rustc-env=SOCKQ_BUILD_DATE={date}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
}
