//! Reads one source file far enough to find its references to other modules: a small Rust lexer
//! (comments, strings, chars and lifetimes skipped), `#[cfg(test)]` items removed, `use` trees
//! expanded, and `crate::…`/`super::…` paths and external crate paths collected with their line.

/// One token of Rust source.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

/// A path found in a file: its segments as written (`crate`, `super`, `self` or a name first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRef {
    pub segments: Vec<String>,
    pub line: usize,
}

/// A `pub use` in a file: `name` stands for `path` to importers of the file's module.
#[derive(Debug, Clone)]
pub struct Reexport {
    pub name: String,
    pub path: Vec<String>,
}

/// What one file refers to.
#[derive(Debug, Default)]
pub struct FileRefs {
    /// `use` leaves and `crate::`/`super::` paths in code.
    pub paths: Vec<PathRef>,
    pub reexports: Vec<Reexport>,
    /// Child modules declared only under `#[cfg(test)]` (`mod tests;`).
    pub test_modules: Vec<String>,
}

/// Scans one file's text.
pub fn scan(text: &str) -> FileRefs {
    let tokens = lex(text);
    let mut refs = FileRefs::default();
    let tokens = strip_test_items(tokens, &mut refs.test_modules);
    collect(&tokens, &mut refs);
    refs
}

fn lex(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < chars.len() {
        let c = chars[i];
        let start_line = line;
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            i = skip_block_comment(&chars, i, &mut line);
        } else if c == '"' {
            i = skip_string(&chars, i + 1, &mut line);
        } else if c == '\'' {
            i = skip_quote(&chars, i);
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
        } else if c.is_alphabetic() || c == '_' {
            let begin = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[begin..i].iter().collect();
            if let Some(next) = literal_after_prefix(&word, &chars, i, &mut line) {
                i = next;
                continue;
            }
            out.push(Token {
                tok: Tok::Ident(word),
                line: start_line,
            });
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push(Token {
                tok: Tok::PathSep,
                line,
            });
            i += 2;
        } else {
            out.push(Token {
                tok: Tok::Punct(c),
                line,
            });
            i += 1;
        }
    }
    out
}

fn skip_block_comment(chars: &[char], mut i: usize, line: &mut usize) -> usize {
    let mut depth = 0;
    while i < chars.len() {
        if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
            depth += 1;
            i += 2;
        } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            *line += usize::from(chars[i] == '\n');
            i += 1;
        }
    }
    i
}

/// Skips a string body from just after its opening quote; returns the index after the closing one.
fn skip_string(chars: &[char], mut i: usize, line: &mut usize) -> usize {
    while i < chars.len() && chars[i] != '"' {
        *line += usize::from(chars[i] == '\n');
        i += if chars[i] == '\\' { 2 } else { 1 };
    }
    i + 1
}

/// A char literal (`'x'`, `'\n'`, `'\u{1F600}'`) or a lifetime/label (`'a`, left for the lexer).
fn skip_quote(chars: &[char], i: usize) -> usize {
    if chars.get(i + 1) == Some(&'\\') {
        let mut j = i + 2;
        while j < chars.len() && chars[j] != '\'' {
            j += 1;
        }
        j + 1
    } else if chars.get(i + 2) == Some(&'\'') {
        i + 3
    } else {
        i + 1
    }
}

/// `b"…"`, `c"…"`, `r"…"`, `r#"…"#`, `br#"…"#`, `b'x'`: the index after the literal; `None` when
/// `word` is an ordinary identifier (or a raw identifier's `r`, whose name follows as a word).
fn literal_after_prefix(word: &str, chars: &[char], i: usize, line: &mut usize) -> Option<usize> {
    let next = chars.get(i).copied();
    match (word, next) {
        ("b" | "c", Some('"')) => Some(skip_string(chars, i + 1, line)),
        ("b", Some('\'')) => Some(skip_quote(chars, i)),
        ("r" | "br" | "cr", Some('"' | '#')) => {
            let mut j = i;
            while chars.get(j) == Some(&'#') {
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                return None;
            }
            let hashes = j - i;
            j += 1;
            while j < chars.len() {
                if chars[j] == '"' && (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) {
                    return Some(j + 1 + hashes);
                }
                *line += usize::from(chars[j] == '\n');
                j += 1;
            }
            Some(j)
        }
        _ => None,
    }
}

fn is_ident(t: Option<&Token>, word: &str) -> bool {
    matches!(t, Some(Token { tok: Tok::Ident(w), .. }) if w == word)
}

fn is_punct(t: Option<&Token>, c: char) -> bool {
    matches!(t, Some(Token { tok: Tok::Punct(p), .. }) if *p == c)
}

/// Drops every item under `#[cfg(test)]` (or a `cfg` naming `test` without `not`): test code may
/// reach anywhere. A dropped `mod name;` is remembered, so its file is skipped too.
fn strip_test_items(tokens: Vec<Token>, test_modules: &mut Vec<String>) -> Vec<Token> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        if is_punct(tokens.get(i), '#') && is_punct(tokens.get(i + 1), '[') {
            let end = matching(&tokens, i + 1);
            let attr = &tokens[i + 2..end];
            let cfg_test = is_ident(attr.first(), "cfg")
                && attr.iter().any(|t| t.tok == Tok::Ident("test".into()))
                && !attr.iter().any(|t| t.tok == Tok::Ident("not".into()));
            if cfg_test {
                i = skip_item(&tokens, end + 1, test_modules);
                continue;
            }
        }
        out.push(tokens[i].clone());
        i += 1;
    }
    out
}

/// The index of the bracket closing the one at `open`.
fn matching(tokens: &[Token], open: usize) -> usize {
    let mut depth = 0usize;
    for (j, t) in tokens.iter().enumerate().skip(open) {
        match t.tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                depth -= 1;
                if depth == 0 {
                    return j;
                }
            }
            _ => {}
        }
    }
    tokens.len().saturating_sub(1)
}

/// Skips one item (its further attributes, then up to its `;` or its body's closing brace).
fn skip_item(tokens: &[Token], mut i: usize, test_modules: &mut Vec<String>) -> usize {
    while is_punct(tokens.get(i), '#') {
        i = matching(tokens, i + 1) + 1;
    }
    let mut first = i;
    if is_ident(tokens.get(first), "pub") {
        first += 1;
        if is_punct(tokens.get(first), '(') {
            first = matching(tokens, first) + 1;
        }
    }
    let is_use = is_ident(tokens.get(first), "use");
    while i < tokens.len() {
        match &tokens[i].tok {
            Tok::Ident(w) if w == "mod" && is_punct(tokens.get(i + 2), ';') => {
                if let Some(Token {
                    tok: Tok::Ident(name),
                    ..
                }) = tokens.get(i + 1)
                {
                    test_modules.push(name.clone());
                }
                return i + 3;
            }
            Tok::Punct(';') => return i + 1,
            Tok::Punct('{') if !is_use => return matching(tokens, i) + 1,
            Tok::Punct('(' | '[' | '{') => i = matching(tokens, i) + 1,
            _ => i += 1,
        }
    }
    i
}

/// Collects `use` trees, re-exports and paths in code.
fn collect(tokens: &[Token], refs: &mut FileRefs) {
    let mut i = 0;
    while i < tokens.len() {
        let starts_use = is_ident(tokens.get(i), "use")
            && !is_punct(tokens.get(i + 1), '<')
            && !matches!(
                tokens.get(i.wrapping_sub(1)),
                Some(Token {
                    tok: Tok::PathSep,
                    ..
                })
            );
        if starts_use {
            let public = is_ident(tokens.get(i.wrapping_sub(1)), "pub")
                || is_punct(tokens.get(i.wrapping_sub(1)), ')');
            let mut leaves = Vec::new();
            i = use_tree(tokens, i + 1, Vec::new(), &mut leaves);
            for (segments, alias, line) in leaves {
                if public && let Some(name) = alias.or_else(|| segments.last().cloned()) {
                    let path = segments.clone();
                    refs.reexports.push(Reexport { name, path });
                }
                refs.paths.push(PathRef { segments, line });
            }
            continue;
        }
        let anchored = matches!(&tokens[i].tok, Tok::Ident(w) if w == "crate" || w == "super")
            || matches!(&tokens[i].tok, Tok::Ident(w) if is_layered_crate(w));
        let continues = matches!(
            tokens.get(i.wrapping_sub(1)),
            Some(Token {
                tok: Tok::PathSep,
                ..
            })
        ) || is_punct(tokens.get(i.wrapping_sub(1)), '$');
        if anchored
            && !continues
            && matches!(
                tokens.get(i + 1),
                Some(Token {
                    tok: Tok::PathSep,
                    ..
                })
            )
        {
            let line = tokens[i].line;
            let mut segments = Vec::new();
            while let Some(Token {
                tok: Tok::Ident(w), ..
            }) = tokens.get(i)
            {
                segments.push(w.clone());
                if !matches!(
                    tokens.get(i + 1),
                    Some(Token {
                        tok: Tok::PathSep,
                        ..
                    })
                ) {
                    break;
                }
                i += 2;
            }
            refs.paths.push(PathRef { segments, line });
        }
        i += 1;
    }
}

/// External crates whose place the layer rules fix (actix in `http`, diesel in `store`).
pub fn is_layered_crate(name: &str) -> bool {
    name.starts_with("actix")
        || matches!(
            name,
            "diesel" | "diesel_migrations" | "r2d2" | "libsqlite3_sys"
        )
}

type Leaf = (Vec<String>, Option<String>, usize);

/// Expands one use tree from `i`; returns the index after it (past the `;` at the top level).
fn use_tree(tokens: &[Token], mut i: usize, prefix: Vec<String>, out: &mut Vec<Leaf>) -> usize {
    let mut path = prefix;
    let line = tokens.get(i).map_or(0, |t| t.line);
    loop {
        match tokens.get(i).map(|t| &t.tok) {
            Some(Tok::Ident(w)) => {
                if w != "self" || path.is_empty() {
                    path.push(w.clone());
                }
                i += 1;
                if !matches!(tokens.get(i).map(|t| &t.tok), Some(Tok::PathSep)) {
                    break;
                }
                i += 1;
            }
            Some(Tok::PathSep) => i += 1,
            Some(Tok::Punct('{')) => {
                i += 1;
                while !is_punct(tokens.get(i), '}') && i < tokens.len() {
                    i = use_tree(tokens, i, path.clone(), out);
                    if is_punct(tokens.get(i), ',') {
                        i += 1;
                    }
                }
                return finish(tokens, i + 1);
            }
            Some(Tok::Punct('*')) => {
                out.push((path, Some("*".into()), line));
                return finish(tokens, i + 1);
            }
            _ => break,
        }
    }
    let mut alias = None;
    if is_ident(tokens.get(i), "as") {
        if let Some(Token {
            tok: Tok::Ident(a), ..
        }) = tokens.get(i + 1)
        {
            alias = Some(a.clone());
        }
        i += 2;
    }
    out.push((path, alias, line));
    finish(tokens, i)
}

/// Steps over a closing `;` of a whole `use` item, but not over a group's `,` or `}`.
fn finish(tokens: &[Token], i: usize) -> usize {
    if is_punct(tokens.get(i), ';') {
        i + 1
    } else {
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(text: &str) -> Vec<String> {
        scan(text)
            .paths
            .iter()
            .map(|p| p.segments.join("::"))
            .collect()
    }

    #[test]
    fn use_trees_expand() {
        let found = paths("use crate::{store::{self, Tx}, oauth::jose as j};\nuse super::x::*;");
        assert_eq!(
            found,
            [
                "crate::store",
                "crate::store::Tx",
                "crate::oauth::jose",
                "super::x"
            ]
        );
    }

    #[test]
    fn comments_strings_and_tests_are_not_code() {
        let text = "// crate::a::b\nlet s = \"crate::c::d\"; \
                    let r = r#\"crate::e\"#; let c = '\"';\n\
                    #[cfg(test)]\nmod tests { use crate::f; }\nfn g<'a>() { crate::h::i(); }";
        assert_eq!(paths(text), ["crate::h::i"]);
    }
}
