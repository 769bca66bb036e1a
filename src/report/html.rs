//! `report.html`: the report's markdown turned into one self-contained HTML
//! page, images inlined as base64 `data:` URIs so the file can be mailed or
//! uploaded as a CI artifact on its own.
//!
//! Only the markdown subset [`super::markdown`] writes is understood:
//! `#` headings (each given an `id`: its text slugged, so `#summary` links
//! work), pipe tables (header cells `<th scope="col">`), `- ` lists,
//! `![alt](path)` images on their own line, paragraphs, inline `` `code` ``
//! / `**bold**`, and the lines `<details><summary>…</summary>`,
//! `</details>`, `<div class="lead">` (the summary beside the first plot)
//! and `</div>`, passed through as they are (the renderer writes them;
//! they are not escaped).

use std::fmt::Write as _;
use std::path::Path;

use base64::Engine as _;

/// Render `markdown` as a page; image paths are resolved against `base`
/// and inlined (an unreadable image becomes its alt text, noted).
pub fn render_html(title: &str, markdown: &str, base: &Path) -> String {
    let mut body = String::new();
    let mut lines = markdown.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(h) = heading(line) {
            let _ = writeln!(
                body,
                "<h{0} id=\"{2}\">{1}</h{0}>",
                h.0,
                inline(h.1),
                anchor(h.1)
            );
        } else if line.starts_with("<details>")
            || line == "</details>"
            || line == "<div class=\"lead\">"
            || line == "</div>"
        {
            let _ = writeln!(body, "{line}");
        } else if line.starts_with('|') {
            let mut rows = vec![line];
            while let Some(l) = lines.peek().filter(|l| l.starts_with('|')) {
                rows.push(l);
                lines.next();
            }
            table(&mut body, &rows);
        } else if let Some(item) = line.strip_prefix("- ") {
            body.push_str("<ul>\n");
            let _ = writeln!(body, "<li>{}</li>", inline(item));
            while let Some(l) = lines.peek().and_then(|l| l.strip_prefix("- ")) {
                let _ = writeln!(body, "<li>{}</li>", inline(l));
                lines.next();
            }
            body.push_str("</ul>\n");
        } else if let Some((alt, path)) = image(line) {
            let _ = writeln!(body, "<figure>{}</figure>", embed(alt, path, base));
        } else if !line.trim().is_empty() {
            let _ = writeln!(body, "<p>{}</p>", inline(line));
        }
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(title)
    )
}

const STYLE: &str = "body{font-family:sans-serif;max-width:1400px;margin:1em auto;padding:0 1em;color:#222;line-height:1.35}\
h1{font-size:1.5em;margin:.3em 0}h2{font-size:1.25em;margin:1em 0 .4em}h3{font-size:1.05em;margin:.8em 0 .3em}p{margin:.4em 0}\
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}th,td{border:1px solid #ccc;padding:.2em .5em}\
th{background:#f3f3f3}td{text-align:right}td:first-child{text-align:left}\
figure{margin:.3em 0}img{max-width:100%;border:1px solid #eee}code{background:#f6f6f6;padding:0 .2em}\
details{margin:.5em 0}summary{cursor:pointer;font-weight:bold}\
.lead{display:flex;flex-wrap:wrap;gap:0 1em;align-items:flex-start}.lead table{font-size:.8em;margin:0}\
.lead th,.lead td{padding:.1em .35em}.lead figure{flex:1 1 340px;margin:0}";

/// A heading's `id`: lower-case ASCII letters and digits, other runs as `-`.
fn anchor(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

fn heading(line: &str) -> Option<(usize, &str)> {
    let level = line.chars().take_while(|&c| c == '#').count();
    (1..=6)
        .contains(&level)
        .then(|| line[level..].strip_prefix(' '))
        .flatten()
        .map(|t| (level, t))
}

fn image(line: &str) -> Option<(&str, &str)> {
    let rest = line.trim().strip_prefix("![")?;
    let (alt, rest) = rest.split_once("](")?;
    Some((alt, rest.strip_suffix(')')?))
}

fn embed(alt: &str, path: &str, base: &Path) -> String {
    let mime = match Path::new(path).extension().and_then(|e| e.to_str()) {
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    };
    match std::fs::read(base.join(path)) {
        Ok(bytes) => format!(
            "<img alt=\"{}\" src=\"data:{mime};base64,{}\">",
            escape(alt),
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ),
        Err(_) => format!(
            "<em>{} (image `{}` missing)</em>",
            escape(alt),
            escape(path)
        ),
    }
}

fn cells(row: &str) -> Vec<&str> {
    let row = row.trim().trim_start_matches('|').trim_end_matches('|');
    row.split('|').map(str::trim).collect()
}

fn table(out: &mut String, rows: &[&str]) {
    out.push_str("<table>\n");
    let is_rule = |r: &str| {
        cells(r)
            .iter()
            .all(|c| c.chars().all(|ch| "-:".contains(ch)))
    };
    let header = rows.len() > 1 && is_rule(rows[1]);
    for (i, row) in rows.iter().enumerate() {
        if header && i == 1 {
            continue;
        }
        let head = header && i == 0;
        out.push_str("<tr>");
        for c in cells(row) {
            if head {
                let _ = write!(out, "<th scope=\"col\">{}</th>", inline(c));
            } else {
                let _ = write!(out, "<td>{}</td>", inline(c));
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

/// Escape, then `code` and **bold**.
fn inline(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in escape(text).split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{part}</code>");
        } else {
            for (j, p) in part.split("**").enumerate() {
                if j % 2 == 1 {
                    let _ = write!(out, "<strong>{p}</strong>");
                } else {
                    out.push_str(p);
                }
            }
        }
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_renders_and_images_inline() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.png"), [1u8, 2, 3]).unwrap();
        let md = "# T\n\n## `a`: b & c\n\n<details><summary>More</summary>\n\n| a | b |\n|---|---:|\n| `x` | **1** |\n\n</details>\n\n- one <two>\n\n![plot](a.png)\n![gone](b.png)\n";
        let html = render_html("t", md, dir.path());
        assert!(html.contains("<h1 id=\"t\">T</h1>"));
        assert!(html.contains("<h2 id=\"a-b-c\"><code>a</code>: b &amp; c</h2>"));
        assert!(html.contains("<details><summary>More</summary>\n<table>"));
        assert!(html.contains("</table>\n</details>"));
        assert!(html.contains("<tr><th scope=\"col\">a</th><th scope=\"col\">b</th></tr>"));
        assert!(html.contains("<td><code>x</code></td><td><strong>1</strong></td>"));
        assert!(html.contains("<li>one &lt;two&gt;</li>"));
        // base64 of 01 02 03 is AQID.
        assert!(html.contains("src=\"data:image/png;base64,AQID\""));
        assert!(html.contains("image `b.png` missing"));
    }
}
