//! The text log: one line per event, whatever the values hold. Label
//! values, job ids and service names come from outside; a `\n` or an
//! escape sequence in one must not start a forged line or recolour the
//! terminal, so every control character inside a line is written escaped
//! (`\n`, `\r`, `\x1b`, ...). The JSON log escapes them itself.

use std::io::{self, Write};

/// `line` with every control character but a final newline (and tabs)
/// escaped.
pub fn escape_controls(line: &str) -> String {
    let (body, end) = match line.strip_suffix('\n') {
        Some(b) => (b, "\n"),
        None => (line, ""),
    };
    let mut out = String::with_capacity(line.len());
    for c in body.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push('\t'),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push_str(end);
    out
}

/// A writer for `tracing_subscriber::fmt` that escapes each event (the fmt
/// layer writes one whole event per call) before it reaches `W`.
pub struct Escaping<W>(pub W);

impl<W: Write> Write for Escaping<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(escape_controls(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Standard output, escaped.
pub fn stdout() -> Escaping<io::Stdout> {
    Escaping(io::stdout())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_cannot_start_a_line_or_colour_the_terminal() {
        let line = "WARN alert fired service=a\nERROR forged \u{1b}[31mred\r\n";
        let out = escape_controls(line);
        assert_eq!(
            out,
            "WARN alert fired service=a\\nERROR forged \\x1b[31mred\\r\n"
        );
        assert_eq!(out.matches('\n').count(), 1);
        let mut w = Escaping(Vec::new());
        w.write_all(b"x=\x07\n").expect("write");
        assert_eq!(w.0, b"x=\\x07\n");
    }
}
