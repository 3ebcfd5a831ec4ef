//! Asking the user one question in the terminal: print a prompt, edit a line with the
//! [`LineEditor`], echo it when the session has a PTY (the client echoes otherwise).

use crate::line_editor::{Event, LineEditor};
use crate::{Input, Terminal};

/// The answer to a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Line(String),
    /// Ctrl-C.
    Cancel,
    /// Ctrl-D on an empty line, end of input, or the user left.
    End,
}

/// Prints `prompt` and reads one line.
pub async fn read_line(term: &mut Terminal, prompt: &str) -> Answer {
    let pty = term.term.is_some();
    let mut editor = LineEditor::new();
    if !term.print(prompt).await {
        return Answer::End;
    }
    loop {
        let bytes = match term.input.recv().await {
            None | Some(Input::Eof) => return Answer::End,
            Some(Input::Resize { cols, rows }) => {
                term.cols = cols;
                term.rows = rows;
                continue;
            }
            Some(Input::Signal(_)) => continue,
            Some(Input::Data(bytes)) => bytes,
        };
        for ev in editor.feed(&bytes) {
            match ev {
                Event::Changed | Event::Redraw
                    if pty && !term.print(&format!("\r\x1b[K{prompt}{}", editor.line())).await =>
                {
                    return Answer::End;
                }
                Event::Submit(line) => {
                    if pty {
                        term.print("\n").await;
                    }
                    return Answer::Line(line);
                }
                Event::Interrupt => {
                    if pty {
                        term.print("^C\n").await;
                    }
                    return Answer::Cancel;
                }
                Event::EndOfInput => return Answer::End,
                _ => {}
            }
        }
    }
}
