//! The password a command asks for: on a terminal, typed twice without being shown; otherwise
//! one line of standard input (a pipe, a file).

use std::io::IsTerminal;

/// Reads a new password: hidden and asked twice on a terminal, a mismatch refused; one line
/// from standard input when that is not a terminal.
pub(super) fn new_password() -> Result<String, String> {
    if std::io::stdin().is_terminal() {
        let term = console::Term::stderr();
        let ask = |prompt: &str| {
            term.write_str(prompt)
                .and_then(|()| term.read_secure_line())
                .map_err(|e| format!("reading the password from the terminal: {e}"))
        };
        let first = ask("password (not shown): ")?;
        let again = ask("the same password again: ")?;
        if first != again {
            return Err("the two passwords differ; nothing was created".to_owned());
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("reading the password from standard input: {e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
