//! Aligned text tables for the commands' output: each column as wide as its widest cell.

/// `header` and `rows` as lines; columns marked in `right` are right-aligned (numbers).
pub fn render(header: &[&str], rows: &[Vec<String>], right: &[bool]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            let pad = w.saturating_sub(cell.chars().count());
            if right.get(i).copied().unwrap_or(false) {
                out.extend(std::iter::repeat_n(' ', pad));
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    };
    let mut out = line(&mut header.iter().copied());
    for r in rows {
        out.push_str(&line(&mut r.iter().map(String::as_str)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_whatever_the_cell_widths() {
        let rows = vec![
            vec!["a-very-long-name*".to_string(), "1".into(), "x".into()],
            vec!["b".to_string(), "12345".into(), "".into()],
        ];
        let t = render(&["NAME", "N", "NOTE"], &rows, &[false, true, false]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "NAME                   N  NOTE");
        assert_eq!(lines[1], "a-very-long-name*      1  x");
        assert_eq!(lines[2], "b                  12345");
        // Every column starts at the same offset on every line.
        assert_eq!(lines[0].find('N'), Some(0));
        assert_eq!(lines[0].find("NOTE"), lines[1].find('x'));
    }
}
