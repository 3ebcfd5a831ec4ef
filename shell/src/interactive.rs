//! The interactive session: the target menu, and back to it after every target session.
//!
//! With a PTY the screen is redrawn on every keystroke (the list filters as the user
//! types, and follows window resizes). Without one (`ssh gw < script`) the menu prints
//! the list once and reads lines, which keeps it usable from scripts and tests.

use gatehouse_core::Gateway;
use gatehouse_core::targets;

use crate::line_editor::{Event, LineEditor};
use crate::menu::{Choice, HELP, Menu, View};
use crate::sanitize::for_terminal;
use crate::visit::{Request, visit};
use crate::{Input, Terminal, Visitor};

/// What happened to the menu loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Stay,
    Leave,
}

struct Screen {
    menu: Menu,
    editor: LineEditor,
    status: Option<String>,
    header: String,
    pty: bool,
}

/// Runs the menu until the user leaves; returns the exit status for their client.
pub async fn run(gw: &Gateway, visitor: &Visitor, term: &mut Terminal) -> u32 {
    let mut screen = Screen {
        menu: Menu::default(),
        editor: LineEditor::new(),
        status: None,
        header: String::new(),
        pty: term.term.is_some(),
    };
    if let Err(status) = Box::pin(reload(gw, visitor, &mut screen)).await {
        term.print(&status).await;
        return 1;
    }
    if !screen.pty {
        term.print(&format!("{}\n{}", screen.header, screen.menu.render_plain(""))).await;
    }
    draw(term, &mut screen).await;
    loop {
        let bytes = match term.input.recv().await {
            None | Some(Input::Eof) => return 0,
            Some(Input::Resize { cols, rows }) => {
                term.cols = cols;
                term.rows = rows;
                if screen.pty {
                    draw(term, &mut screen).await;
                }
                continue;
            }
            Some(Input::Signal(_)) => continue,
            Some(Input::Data(bytes)) => bytes,
        };
        let mut submitted = false;
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            // One line at a time: what follows Enter is typeahead for the target it opens.
            let (events, used) = screen.editor.feed_line(rest);
            rest = &rest[used..];
            for ev in events {
                submitted |= matches!(ev, Event::Submit(_));
                term.typeahead = rest.to_vec();
                // Boxed: what an event may do (open a target, read the database) is
                // state this task holds only while it runs, not while the menu waits.
                let step = Box::pin(on_event(gw, visitor, term, &mut screen, ev)).await;
                if term.typeahead.is_empty() {
                    // A target session took it.
                    rest = &[];
                }
                term.typeahead.clear();
                if step == Step::Leave {
                    if screen.pty {
                        term.print("\nBye.\n").await;
                    }
                    return 0;
                }
            }
        }
        if screen.pty || submitted {
            draw(term, &mut screen).await;
        }
    }
}

async fn on_event(gw: &Gateway, visitor: &Visitor, term: &mut Terminal, screen: &mut Screen, ev: Event) -> Step {
    match ev {
        Event::Changed | Event::Redraw => {}
        Event::Interrupt => screen.status = None,
        Event::EndOfInput => return Step::Leave,
        Event::Complete => {
            if let Some(done) = screen.menu.complete(screen.editor.line()) {
                screen.editor.set_line(&done);
            }
        }
        Event::Submit(line) => match screen.menu.choose(&line) {
            Choice::Exit => return Step::Leave,
            Choice::Help => screen.status = Some(HELP.trim_end().to_string()),
            Choice::Nothing => {
                screen.status = None;
                if let Err(msg) = reload(gw, visitor, screen).await {
                    screen.status = Some(msg);
                }
                if !screen.pty {
                    term.print(&screen.menu.render_plain("")).await;
                }
            }
            Choice::NoMatch => {
                screen.status = Some(format!("No target matches '{}'.", for_terminal(line.trim())));
            }
            Choice::Ambiguous(n) => {
                screen.status = Some(format!("{n} targets match; type more of the name, or a number."));
                if screen.pty {
                    screen.editor.set_line(line.trim());
                } else {
                    term.print(&screen.menu.render_plain(&line)).await;
                }
            }
            Choice::Target(i) => {
                let name = screen.menu.entries[i].name.clone();
                let shown = screen.menu.entries[i].shown.clone();
                term.print(&format!("{}Connecting to {shown}…\n", if screen.pty { "\x1b[H\x1b[2J" } else { "" })).await;
                screen.status = Some(match visit(gw, visitor, &name, Request::Shell, term).await {
                    Ok(ending) => format!("Connection to {shown} closed: {}.", ending.describe()),
                    Err(e) => format!("Could not connect to {shown}: {e}"),
                });
                // The target may have left the terminal in any state: reset attributes.
                term.print("\x1b[0m\n").await;
                if let Err(msg) = reload(gw, visitor, screen).await {
                    screen.status = Some(msg);
                }
                if !screen.pty {
                    term.print(&screen.menu.render_plain("")).await;
                }
            }
        },
    }
    Step::Stay
}

/// Reads the user's grants again (a revoked grant disappears, a new one appears).
async fn reload(gw: &Gateway, visitor: &Visitor, screen: &mut Screen) -> Result<(), String> {
    match targets::granted_to(&gw.db, visitor.user.id).await {
        Ok(list) => {
            screen.menu = Menu::from_targets(&list);
            screen.header = format!(
                "Gatehouse: {} (second factor: {}), {} target{}. ? for help.",
                for_terminal(&visitor.user.name),
                for_terminal(&visitor.passed_with),
                list.len(),
                if list.len() == 1 { "" } else { "s" }
            );
            Ok(())
        }
        Err(e) => {
            tracing::error!(user = %visitor.user.name, error = %e, "could not list granted targets");
            Err("The gateway cannot read its database right now; try again later.\n".into())
        }
    }
}

/// Shows the menu: the whole screen with a PTY; the pending message and a prompt without.
async fn draw(term: &Terminal, screen: &mut Screen) {
    if screen.pty {
        let view = View {
            header: &screen.header,
            status: screen.status.as_deref(),
            filter: screen.editor.line(),
            cols: if term.cols == 0 { 80 } else { term.cols },
            rows: if term.rows == 0 { 24 } else { term.rows },
        };
        term.print(&screen.menu.render(&view)).await;
    } else {
        if let Some(status) = screen.status.take() {
            term.print(&format!("{status}\n")).await;
        }
        term.print("> ").await;
    }
}
