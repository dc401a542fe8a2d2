//! `sockq man`: clap_mangen's page of the top-level command, plus one section per subcommand
//! with that subcommand's own flags (`SNAPSHOT OPTIONS`: `--json`, `--cpu-window`, …), which
//! clap_mangen leaves to separate pages (`sockq-snapshot(1)`) that a single binary does not
//! install.

use clap::CommandFactory;

use super::args::Cli;

/// The whole page (roff).
pub(super) fn page() -> std::io::Result<String> {
    let cmd = Cli::command();
    let mut main = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut main)?;
    let mut sections = String::new();
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        if sub.get_arguments().all(|a| a.is_hide_set()) {
            continue;
        }
        let mut roff = Vec::new();
        clap_mangen::Man::new(sub.clone()).render_options_section(&mut roff)?;
        let heading = format!(".SH \"{} OPTIONS\"", sub.get_name().to_uppercase());
        sections.push_str(&own_section(&String::from_utf8_lossy(&roff), &heading));
    }
    Ok(insert_before_extra(
        &String::from_utf8_lossy(&main),
        &sections,
    ))
}

/// A rendered options section without roff's apostrophe preamble (the page has it once), its
/// `.SH OPTIONS` heading replaced by `heading`.
fn own_section(roff: &str, heading: &str) -> String {
    let mut out = String::new();
    for line in roff.lines() {
        if line.starts_with(".ie \\n(.g .ds Aq") || line.starts_with(".el .ds Aq") {
            continue;
        }
        out.push_str(if line == ".SH OPTIONS" { heading } else { line });
        out.push('\n');
    }
    out
}

/// `page` with `sections` inserted before its EXTRA section (the after-help text), else before
/// VERSION, else at the end.
fn insert_before_extra(page: &str, sections: &str) -> String {
    let at = [".SH EXTRA\n", ".SH VERSION\n"]
        .iter()
        .find_map(|h| page.find(h))
        .unwrap_or(page.len());
    let mut out = String::with_capacity(page.len() + sections.len());
    out.push_str(&page[..at]);
    out.push_str(sections);
    out.push_str(&page[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_go_before_extra_or_version_or_at_the_end() {
        let s = ".SH \"X OPTIONS\"\n";
        assert_eq!(
            insert_before_extra(".SH A\n.SH EXTRA\nx\n.SH VERSION\n", s),
            ".SH A\n.SH \"X OPTIONS\"\n.SH EXTRA\nx\n.SH VERSION\n"
        );
        assert_eq!(
            insert_before_extra(".SH A\n.SH VERSION\n", s),
            ".SH A\n.SH \"X OPTIONS\"\n.SH VERSION\n"
        );
        assert_eq!(
            insert_before_extra(".SH A\n", s),
            ".SH A\n.SH \"X OPTIONS\"\n"
        );
    }

    #[test]
    fn every_visible_subcommand_flag_is_on_the_page() {
        let page = page().expect("renders");
        assert_eq!(page.matches(".ds Aq \\(aq").count(), 1, "one preamble");
        for (section, flag) in [
            ("SNAPSHOT OPTIONS", "cpu\\-window"),
            ("SNAPSHOT OPTIONS", "json"),
            ("WATCH OPTIONS", "count"),
            ("SERVE OPTIONS", "header\\-timeout"),
        ] {
            let at = page
                .find(&format!(".SH \"{section}\""))
                .unwrap_or_else(|| panic!("no {section} in\n{page}"));
            let rest = &page[at + 4..];
            let end = rest.find(".SH ").unwrap_or(rest.len());
            assert!(rest[..end].contains(flag), "{flag} not in {section}");
        }
        assert!(
            !page.contains("LAB\\-SERVER") && !page.contains("__lab"),
            "hidden"
        );
    }
}
