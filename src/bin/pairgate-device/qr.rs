//! The verification link as a QR code in the terminal, two modules per character cell (half
//! blocks). On a terminal the code is painted black on white with explicit colours, so it reads
//! the same on a dark and on a light theme; piped, or with `NO_COLOR` set, it is plain text whose
//! ink is the dark modules (right for paper and light themes).

use std::io::IsTerminal;

/// Black text on a white background (the 256-colour palette's pure black and white), and back.
const PAINT: &str = "\u{1b}[38;5;16;48;5;231m";
const RESET: &str = "\u{1b}[0m";

/// The QR code of `link`, ready to print; `None` if the link is too long for one.
pub fn art(link: &str, painted: bool) -> Option<String> {
    let qr = qrcode::QrCode::new(link.as_bytes()).ok()?;
    let plain = qr
        .render::<qrcode::render::unicode::Dense1x2>()
        .quiet_zone(true)
        .build();
    if !painted {
        return Some(plain);
    }
    let lines: Vec<String> = plain
        .lines()
        .map(|line| format!("  {PAINT}{line}{RESET}"))
        .collect();
    Some(lines.join("\n"))
}

/// Whether standard output is a terminal that may be painted.
pub fn paint_stdout() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A terminal theme: the default foreground and background, as grey levels.
    #[derive(Clone, Copy)]
    struct Theme {
        fg: u8,
        bg: u8,
    }
    const DARK: Theme = Theme { fg: 230, bg: 20 };
    const LIGHT: Theme = Theme { fg: 20, bg: 250 };

    /// What a terminal with `theme` shows for `text`, as grey pixels, one per module: half blocks
    /// are ink (the foreground) above, below or both; the SGR colours 16 and 231 of the 256-colour
    /// palette are black and white; `0` resets to the theme.
    fn screen(text: &str, theme: Theme) -> Vec<Vec<u8>> {
        let mut rows = Vec::new();
        for line in text.lines() {
            let (mut fg, mut bg) = (theme.fg, theme.bg);
            let (mut top, mut bottom) = (Vec::new(), Vec::new());
            let mut chars = line.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '\u{1b}' {
                    let mut code = String::new();
                    for c in chars.by_ref() {
                        if c == 'm' {
                            break;
                        }
                        code.push(c);
                    }
                    match code.trim_start_matches('[') {
                        "0" => (fg, bg) = (theme.fg, theme.bg),
                        "38;5;16;48;5;231" => (fg, bg) = (0, 255),
                        other => panic!("an escape this terminal does not know: {other}"),
                    }
                    continue;
                }
                let (t, b) = match c {
                    '█' => (fg, fg),
                    '▀' => (fg, bg),
                    '▄' => (bg, fg),
                    ' ' => (bg, bg),
                    other => panic!("unexpected character {other:?}"),
                };
                top.push(t);
                bottom.push(b);
            }
            rows.push(top);
            rows.push(bottom);
        }
        rows
    }

    /// Reads a QR code off `screen` as a phone's camera would: 4 × 4 pixels per module, on a
    /// margin of the screen's background.
    fn scan(screen: &[Vec<u8>], theme: Theme) -> Option<String> {
        const SCALE: usize = 4;
        const MARGIN: usize = 16;
        let width = screen.iter().map(Vec::len).max()?;
        let (w, h) = (
            width * SCALE + 2 * MARGIN,
            screen.len() * SCALE + 2 * MARGIN,
        );
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
            let (x, y) = (x.checked_sub(MARGIN), y.checked_sub(MARGIN));
            x.zip(y)
                .and_then(|(x, y)| screen.get(y / SCALE)?.get(x / SCALE).copied())
                .unwrap_or(theme.bg)
        });
        let grids = img.detect_grids();
        grids.first()?.decode().ok().map(|(_, text)| text)
    }

    const LINK: &str = "http://127.0.0.1:8080/device?user_code=BCDF-GHJK";

    #[test]
    fn the_painted_code_reads_on_dark_and_light_themes() {
        let art = art(LINK, true).unwrap();
        for theme in [DARK, LIGHT] {
            assert_eq!(scan(&screen(&art, theme), theme).as_deref(), Some(LINK));
        }
    }

    #[test]
    fn the_plain_code_reads_where_ink_is_dark_and_only_there() {
        let art = art(LINK, false).unwrap();
        assert_eq!(scan(&screen(&art, LIGHT), LIGHT).as_deref(), Some(LINK));
        assert_eq!(
            scan(&screen(&art, DARK), DARK),
            None,
            "unpainted on a dark theme, the code is a negative"
        );
    }
}
