//! Shell-style word splitting without a shell: quoting and escaping only, no expansion.
//! The rules are listed in the crate documentation.

pub fn split(input: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    // The word being built; `None` between words (so `''` can make an empty word).
    let mut word: Option<String> = None;
    let mut chars = input.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err(format!("unterminated single quote in {input:?}")),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err(format!("unterminated double quote in {input:?}")),
                        },
                        Some(c) => w.push(c),
                        None => return Err(format!("unterminated double quote in {input:?}")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err(format!("trailing backslash in {input:?}")),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    if let Some(w) = word {
        words.push(w);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::split;

    fn ok(s: &str) -> Vec<String> {
        split(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn whitespace_separates() {
        assert_eq!(
            ok("  /bin/check  -v\t--port 80\n"),
            ["/bin/check", "-v", "--port", "80"]
        );
        assert!(ok("   ").is_empty());
    }

    #[test]
    fn quotes_group() {
        assert_eq!(ok(r#"sh -c 'exit 3'"#), ["sh", "-c", "exit 3"]);
        assert_eq!(
            ok(r#"echo "a b" 'c "d"' "e 'f'""#),
            ["echo", "a b", r#"c "d""#, "e 'f'"]
        );
        assert_eq!(ok(r#"--name='a b'x"y z""#), ["--name=a bxy z"]);
        assert_eq!(ok(r#"a '' "" b"#), ["a", "", "", "b"]);
    }

    #[test]
    fn backslashes_escape() {
        assert_eq!(ok(r"a\ b c\\d \'e"), ["a b", r"c\d", "'e"]);
        assert_eq!(ok(r#""x\"y\\z\n""#), [r#"x"y\z\n"#]);
        assert_eq!(ok(r"'no\escape'"), [r"no\escape"]);
    }

    #[test]
    fn nothing_is_expanded() {
        assert_eq!(
            ok("echo $HOME ~ * ; | && > `x`"),
            ["echo", "$HOME", "~", "*", ";", "|", "&&", ">", "`x`"]
        );
    }

    #[test]
    fn errors() {
        assert!(split("a 'b").is_err());
        assert!(split("a \"b").is_err());
        assert!(split("a \"b\\").is_err());
        assert!(split("a\\").is_err());
    }
}
