//! Shell-like word splitting without a shell (the `shell-words` crate): quoting only,
//! no expansion.

/// The program and its arguments, or why the text does not split.
pub fn split(input: &str) -> Result<Vec<String>, String> {
    shell_words::split(input).map_err(|e| format!("cannot split the check arguments: {e}"))
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
    fn a_word_that_starts_with_a_hash_begins_a_comment() {
        assert_eq!(ok("check --x # the rest"), ["check", "--x"]);
        assert_eq!(ok("curl http://h/#frag"), ["curl", "http://h/#frag"]);
    }

    #[test]
    fn errors() {
        assert!(split("a 'b").is_err());
        assert!(split("a \"b").is_err());
        assert!(split("a \"b\\").is_err());
        // A trailing lone backslash is kept as it is.
        assert_eq!(ok("a\\"), ["a\\"]);
    }
}
