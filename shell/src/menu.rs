//! The target menu as data: which targets a user sees, how a typed line picks one, and how
//! the screen looks at a given terminal size. No I/O here (the session loop in
//! [`crate::interactive`] feeds it keys and sends what it renders), so every behaviour is
//! unit-tested without sockets.
//!
//! Numbers are positions in the full list and do not move while filtering, so "3" always
//! means the same target on one screen. Names are cleaned of control characters once, when
//! the menu is built, and only the cleaned form is ever rendered.

use gatehouse_core::targets::Target;

use crate::sanitize::{fit, for_terminal};

/// Clears the screen and homes the cursor.
const CLEAR: &str = "\x1b[H\x1b[2J";

/// One line of the menu.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The name as stored, used to connect.
    pub name: String,
    /// The name safe for a terminal.
    pub shown: String,
    /// `user@host:port`, safe for a terminal.
    pub address: String,
}

impl Entry {
    pub fn new(name: &str, username: &str, host: &str, port: u16) -> Entry {
        Entry {
            name: name.to_string(),
            shown: for_terminal(name),
            address: for_terminal(&format!("{username}@{host}:{port}")),
        }
    }
}

/// What a submitted line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Connect to the entry at this index.
    Target(usize),
    Help,
    Exit,
    /// An empty line.
    Nothing,
    /// Nothing matches what was typed.
    NoMatch,
    /// Several targets match; the filter shows them.
    Ambiguous(usize),
}

/// The targets one user may reach, in display order.
#[derive(Debug, Clone, Default)]
pub struct Menu {
    pub entries: Vec<Entry>,
}

/// How to draw one screen.
#[derive(Debug, Clone)]
pub struct View<'a> {
    /// First line: who is signed in.
    pub header: &'a str,
    /// A message from the last action (a closed connection, a refusal), if any.
    pub status: Option<&'a str>,
    /// What the user has typed so far.
    pub filter: &'a str,
    pub cols: u32,
    pub rows: u32,
}

pub const HELP: &str = "\
Type part of a name to filter the list, then Enter to connect when one target is left.
Type a number or a full name and Enter to connect to that target.
Tab completes a name. Ctrl-U clears the line, Ctrl-L redraws.
When a target session ends you come back here.
  ?, help     this help
  exit, quit  leave (Ctrl-D on an empty line does the same)
";

impl Menu {
    pub fn from_targets(targets: &[Target]) -> Menu {
        Menu { entries: targets.iter().map(|t| Entry::new(&t.name, &t.username, &t.host, t.port)).collect() }
    }

    /// Indices of the entries the filter keeps. Empty and numeric filters keep all: a
    /// number picks by position, it does not filter names.
    pub fn matching(&self, filter: &str) -> Vec<usize> {
        let f = filter.trim().to_lowercase();
        if f.is_empty() || f.chars().all(|c| c.is_ascii_digit()) {
            return (0..self.entries.len()).collect();
        }
        (0..self.entries.len()).filter(|&i| self.entries[i].name.to_lowercase().contains(&f)).collect()
    }

    /// What a submitted line asks for. Commands win over a target of the same name (which
    /// is still reachable by number).
    pub fn choose(&self, line: &str) -> Choice {
        let line = line.trim();
        match line {
            "" => return Choice::Nothing,
            "?" | "h" | "help" => return Choice::Help,
            "exit" | "quit" | "logout" | "q" => return Choice::Exit,
            _ => {}
        }
        if line.chars().all(|c| c.is_ascii_digit()) {
            return match line.parse::<usize>() {
                Ok(n) if n >= 1 && n <= self.entries.len() => Choice::Target(n - 1),
                _ => Choice::NoMatch,
            };
        }
        if let Some(i) = self.entries.iter().position(|e| e.name == line) {
            return Choice::Target(i);
        }
        let exact_ci: Vec<usize> =
            (0..self.entries.len()).filter(|&i| self.entries[i].name.eq_ignore_ascii_case(line)).collect();
        if exact_ci.len() == 1 {
            return Choice::Target(exact_ci[0]);
        }
        match self.matching(line).as_slice() {
            [] => Choice::NoMatch,
            [one] => Choice::Target(*one),
            many => Choice::Ambiguous(many.len()),
        }
    }

    /// Tab: the line extended to the longest prefix shared by every matching name.
    pub fn complete(&self, line: &str) -> Option<String> {
        let prefix = line.trim();
        let names: Vec<&str> = self
            .entries
            .iter()
            .map(|e| e.shown.as_str())
            .filter(|n| n.to_lowercase().starts_with(&prefix.to_lowercase()))
            .collect();
        let first = names.first()?;
        let mut common: String = first.to_string();
        for n in &names[1..] {
            let shared: String = common.chars().zip(n.chars()).take_while(|(a, b)| a == b).map(|(a, _)| a).collect();
            common = shared;
        }
        (common.chars().count() > prefix.chars().count()).then_some(common)
    }

    /// A full screen for a PTY: cleared, then header, status, as many entries as fit and
    /// the prompt, every line cut to the width so nothing wraps or scrolls.
    pub fn render(&self, view: &View) -> String {
        let cols = view.cols.max(10) as usize;
        let rows = view.rows.max(3) as usize;
        let mut out = String::from(CLEAR);
        out.push_str(&fit(view.header, cols));
        out.push('\n');
        let mut used = 2; // header + prompt
        if let Some(status) = view.status {
            for line in status.lines() {
                out.push_str(&fit(line, cols));
                out.push('\n');
                used += 1;
            }
        }
        let shown = self.matching(view.filter);
        let room = rows.saturating_sub(used);
        if self.entries.is_empty() {
            if room > 0 {
                out.push_str(&fit("No targets are granted to you. Ask an administrator.", cols));
                out.push('\n');
            }
        } else if shown.is_empty() {
            if room > 0 {
                out.push_str(&fit("No target matches; Ctrl-U clears the filter.", cols));
                out.push('\n');
            }
        } else {
            let fits_all = shown.len() <= room;
            let take = if fits_all { shown.len() } else { room.saturating_sub(1) };
            for &i in &shown[..take] {
                out.push_str(&self.line(i, cols));
                out.push('\n');
            }
            if !fits_all && room > 0 {
                let more = format!("… {} more: type to filter", shown.len() - take);
                out.push_str(&fit(&more, cols));
                out.push('\n');
            }
        }
        out.push_str(&prompt_line(view.filter, cols));
        out
    }

    /// The list as plain lines (for a session without a PTY, which cannot redraw).
    pub fn render_plain(&self, filter: &str) -> String {
        let mut out = String::new();
        if self.entries.is_empty() {
            out.push_str("No targets are granted to you. Ask an administrator.\n");
        }
        for i in self.matching(filter) {
            out.push_str(&self.line(i, 200));
            out.push('\n');
        }
        out
    }

    fn line(&self, i: usize, cols: usize) -> String {
        let e = &self.entries[i];
        let width = self.number_width();
        let name_width = self.entries.iter().map(|e| e.shown.chars().count()).max().unwrap_or(0).min(32);
        let text = format!("{:>width$}  {:<name_width$}  {}", i + 1, e.shown, e.address);
        fit(text.trim_end(), cols)
    }

    fn number_width(&self) -> usize {
        self.entries.len().to_string().len()
    }
}

/// The prompt with the typed filter, keeping the end of a long filter in view.
pub fn prompt_line(filter: &str, cols: usize) -> String {
    let room = cols.saturating_sub(3).max(1);
    let n = filter.chars().count();
    let visible: String = if n > room { filter.chars().skip(n - room).collect() } else { filter.to_string() };
    format!("> {visible}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn menu(names: &[&str]) -> Menu {
        Menu { entries: names.iter().map(|n| Entry::new(n, "u", "h", 22)).collect() }
    }

    #[test]
    fn choose_by_number_name_filter_and_command() {
        let m = menu(&["web1", "web2", "db", "Exit-node"]);
        assert_eq!(m.choose("2"), Choice::Target(1));
        assert_eq!(m.choose(" 3 "), Choice::Target(2));
        assert_eq!(m.choose("0"), Choice::NoMatch);
        assert_eq!(m.choose("9"), Choice::NoMatch);
        assert_eq!(m.choose("99999999999999999999999"), Choice::NoMatch);
        assert_eq!(m.choose("db"), Choice::Target(2));
        assert_eq!(m.choose("DB"), Choice::Target(2));
        assert_eq!(m.choose("web"), Choice::Ambiguous(2));
        assert_eq!(m.choose("eb2"), Choice::Target(1));
        assert_eq!(m.choose("nothing"), Choice::NoMatch);
        assert_eq!(m.choose("exit"), Choice::Exit);
        assert_eq!(m.choose("?"), Choice::Help);
        assert_eq!(m.choose(""), Choice::Nothing);
    }

    #[test]
    fn filter_keeps_numbers_and_is_case_insensitive() {
        let m = menu(&["alpha", "Beta", "gamma"]);
        assert_eq!(m.matching("A"), vec![0, 1, 2]);
        assert_eq!(m.matching("bet"), vec![1]);
        assert_eq!(m.matching("12"), vec![0, 1, 2]);
        let screen = m.render(&View { header: "h", status: None, filter: "gam", cols: 80, rows: 24 });
        assert!(screen.contains("3  gamma"), "{screen}");
        assert!(!screen.contains("alpha"), "{screen}");
        assert!(screen.ends_with("> gam"));
    }

    #[test]
    fn tab_completes_the_common_prefix() {
        let m = menu(&["web-frontend-1", "web-frontend-2", "db"]);
        assert_eq!(m.complete("we").as_deref(), Some("web-frontend-"));
        assert_eq!(m.complete("d").as_deref(), Some("db"));
        assert_eq!(m.complete("db"), None);
        assert_eq!(m.complete("x"), None);
    }

    #[test]
    fn screen_fits_any_size() {
        let names: Vec<String> = (0..50).map(|i| format!("host-with-a-rather-long-name-{i:02}")).collect();
        let refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
        let m = menu(&refs);
        for (cols, rows) in [(80, 24), (20, 5), (10, 3), (1, 1), (300, 100), (0, 0)] {
            let s = m.render(&View { header: "Gatehouse: alice", status: Some("closed"), filter: "", cols, rows });
            let body = s.strip_prefix(CLEAR).unwrap();
            let lines: Vec<&str> = body.split('\n').collect();
            assert!(lines.len() <= (rows.max(3)) as usize, "{cols}x{rows}: {} lines", lines.len());
            for l in &lines {
                assert!(l.chars().count() <= cols.max(10) as usize, "{cols}x{rows}: {l:?}");
            }
            assert!(lines.last().unwrap().starts_with('>'));
        }
        let s = m.render(&View { header: "h", status: None, filter: "", cols: 80, rows: 10 });
        assert!(s.contains("43 more"), "{s}");
    }

    #[test]
    fn hostile_names_are_rendered_harmlessly() {
        let m = Menu { entries: vec![Entry::new("evil\x1b]0;owned\x07\x1b[2J", "root\x1b[31m", "h\r\nx", 22)] };
        let s = m.render(&View { header: "h", status: None, filter: "", cols: 80, rows: 24 });
        let body = s.strip_prefix(CLEAR).unwrap();
        assert!(!body.contains('\x1b') && !body.contains('\x07') && !body.contains('\r'), "{body:?}");
        assert!(body.contains("evil]0;owned[2J"));
        assert_eq!(m.choose("1"), Choice::Target(0));
        assert_eq!(m.entries[0].name, "evil\x1b]0;owned\x07\x1b[2J", "the stored name is kept for connecting");
    }
}
