//! Text helpers.

/// The longest prefix of `s` that is at most `max` bytes long and ends on a char
/// boundary (so it never splits a UTF-8 sequence).
pub fn prefix(s: &str, max: usize) -> &str {
    &s[..s.floor_char_boundary(max)]
}

/// `s` cut to at most `max` bytes on a char boundary, with `…` appended when it was cut
/// (so the result is at most `max + 3` bytes).
pub fn truncate(s: &str, max: usize) -> String {
    truncate_with(s, max, "…")
}

/// [`truncate`] with another marker for the cut (`"..."`, or `""` for none).
pub fn truncate_with(s: &str, max: usize, marker: &str) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    format!("{}{marker}", prefix(s, max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_unchanged() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("", 0), "");
        assert_eq!(prefix("abc", 10), "abc");
    }

    #[test]
    fn long_text_is_cut_on_a_char_boundary() {
        assert_eq!(truncate("abcdef", 3), "abc…");
        assert_eq!(truncate_with("abcdef", 3, "..."), "abc...");
        // "é" is two bytes: a cut inside it moves back to its start.
        assert_eq!(truncate("aé", 2), "a…");
        assert_eq!(prefix("aé", 2), "a");
        assert_eq!(prefix("éé", 0), "");
        let s = "é".repeat(400);
        let t = truncate(&s, 511);
        assert!(t.ends_with('…') && t.len() <= 511 + '…'.len_utf8());
        assert!(t.trim_end_matches('…').chars().all(|c| c == 'é'));
    }
}
