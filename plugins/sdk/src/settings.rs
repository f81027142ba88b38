//! Plugin settings: the `[plugins.<name>.settings]` table of plugins.toml, which the host
//! passes to `configure` as key/value strings.
//!
//! [`Settings::new`] rejects keys the plugin does not know, with a message that lists the
//! known ones; the typed getters turn values into Rust values with messages in one style
//! (`` `key` = "value" is not a port number ``):
//!
//! ```
//! use sidecar_plugin_sdk::Settings;
//!
//! fn configure(pairs: Vec<(String, String)>) -> Result<(u16, bool), String> {
//!     let s = Settings::new(&pairs, &["port", "verbose"])?;
//!     let port = s.parse("port", "a port number")?.unwrap_or(8080);
//!     let verbose = s.flag("verbose")?.unwrap_or(false);
//!     Ok((port, verbose))
//! }
//!
//! let pairs = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
//! assert_eq!(configure(vec![]), Ok((8080, false)));
//! assert_eq!(configure(pairs("port", " 81 ")), Ok((81, false)));
//! assert_eq!(configure(pairs("verbose", "true")), Ok((8080, true)));
//! assert_eq!(
//!     configure(pairs("port", "x")),
//!     Err("`port` = \"x\" is not a port number".to_string())
//! );
//! assert_eq!(
//!     configure(pairs("prot", "81")),
//!     Err("unknown setting `prot` (known: port, verbose)".to_string())
//! );
//! ```
//!
//! A key given more than once is checked every time and the last value wins.

use std::str::FromStr;

/// A plugin's settings whose keys all passed [`Settings::new`].
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    pairs: &'a [(String, String)],
}

impl<'a> Settings<'a> {
    /// Checks that every key is one of `known`. An unknown key is an error:
    /// `` unknown setting `key` (known: a, b) ``, or
    /// `` unknown setting `key` (this plugin has no settings) `` when `known` is empty.
    pub fn new(pairs: &'a [(String, String)], known: &[&str]) -> Result<Settings<'a>, String> {
        match pairs.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            None => Ok(Settings { pairs }),
            Some((key, _)) if known.is_empty() => Err(format!(
                "unknown setting `{key}` (this plugin has no settings)"
            )),
            Some((key, _)) => Err(format!(
                "unknown setting `{key}` (known: {})",
                known.join(", ")
            )),
        }
    }

    /// For a plugin without settings: any key is an error,
    /// `` unknown setting `key` (<plugin> has no settings) ``.
    pub fn none(pairs: &[(String, String)], plugin: &str) -> Result<(), String> {
        match pairs.first() {
            None => Ok(()),
            Some((key, _)) => Err(format!(
                "unknown setting `{key}` ({plugin} has no settings)"
            )),
        }
    }

    /// The raw (untrimmed) value of `key`, the last one if it was given more than once.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.values(key).last()
    }

    /// The raw value of `key`, or the error `` the `key` setting is required ``.
    pub fn required(&self, key: &str) -> Result<&'a str, String> {
        self.get(key)
            .ok_or_else(|| format!("the `{key}` setting is required"))
    }

    /// `key`'s raw value through `convert` (which makes its own error messages; see
    /// [`invalid`]). `None` when the key is absent. Each value of a repeated key is
    /// converted, in order; the first error, else the last value, is returned.
    pub fn map<T>(
        &self,
        key: &str,
        mut convert: impl FnMut(&'a str) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        let mut last = None;
        for value in self.values(key) {
            last = Some(convert(value)?);
        }
        Ok(last)
    }

    /// `key`'s value, trimmed, parsed with [`FromStr`]; a value that does not parse is
    /// the error `` `key` = "value" is not <what> `` (say `what` as "a port number").
    pub fn parse<T: FromStr>(&self, key: &str, what: &str) -> Result<Option<T>, String> {
        self.map(key, |v| {
            let v = v.trim();
            v.parse().map_err(|_| invalid(key, v, what))
        })
    }

    /// `key`'s value, trimmed, as a boolean: Go's spellings (`1`, `t`, `T`, `true`,
    /// `TRUE`, `True` and `0`, `f`, `F`, `false`, `FALSE`, `False`), and the empty string
    /// for false. Anything else is `` `key` = "value" is not a boolean ``.
    pub fn flag(&self, key: &str) -> Result<Option<bool>, String> {
        self.map(key, |v| {
            let v = v.trim();
            parse_bool(v).ok_or_else(|| invalid(key, v, "a boolean"))
        })
    }

    fn values<'k>(&self, key: &'k str) -> impl Iterator<Item = &'a str> + use<'a, 'k> {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The error message for a value that is not what `key` needs:
/// `` `key` = "value" is not <what> ``.
pub fn invalid(key: &str, value: &str, what: &str) -> String {
    format!("`{key}` = {value:?} is not {what}")
}

/// Go's `strconv.ParseBool` spellings, plus the empty string as false.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" | "" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn unknown_keys_are_rejected_with_the_known_ones() {
        let p = pairs(&[("a", "1"), ("c", "2")]);
        assert_eq!(
            Settings::new(&p, &["a", "b"]).expect_err("c is unknown"),
            "unknown setting `c` (known: a, b)"
        );
        assert_eq!(
            Settings::new(&p, &[]).expect_err("no settings"),
            "unknown setting `a` (this plugin has no settings)"
        );
        assert_eq!(
            Settings::none(&p, "Always").expect_err("no settings"),
            "unknown setting `a` (Always has no settings)"
        );
        assert!(Settings::none(&[], "Always").is_ok());
        assert!(Settings::new(&p, &["c", "a"]).is_ok());
    }

    #[test]
    fn typed_values() {
        let p = pairs(&[
            ("port", " 80 "),
            ("on", "True"),
            ("off", ""),
            ("bad", "yes"),
            ("name", " x "),
        ]);
        let s = Settings::new(&p, &["port", "on", "off", "bad", "name", "absent"]).expect("ok");
        assert_eq!(s.parse::<u16>("port", "a port number"), Ok(Some(80)));
        assert_eq!(s.parse::<u16>("absent", "a port number"), Ok(None));
        assert_eq!(
            s.parse::<u8>("name", "a number"),
            Err("`name` = \"x\" is not a number".to_string())
        );
        assert_eq!(s.flag("on"), Ok(Some(true)));
        assert_eq!(s.flag("off"), Ok(Some(false)));
        assert_eq!(
            s.flag("bad"),
            Err("`bad` = \"yes\" is not a boolean".to_string())
        );
        assert_eq!(s.get("name"), Some(" x "));
        assert_eq!(s.required("name"), Ok(" x "));
        assert_eq!(
            s.required("absent"),
            Err("the `absent` setting is required".to_string())
        );
    }

    #[test]
    fn repeated_keys_are_each_checked_and_the_last_wins() {
        let p = pairs(&[("n", "1"), ("n", "2")]);
        let s = Settings::new(&p, &["n"]).expect("ok");
        assert_eq!(s.get("n"), Some("2"));
        assert_eq!(s.parse::<u8>("n", "a number"), Ok(Some(2)));
        let p = pairs(&[("n", "x"), ("n", "2")]);
        let s = Settings::new(&p, &["n"]).expect("ok");
        assert!(s.parse::<u8>("n", "a number").is_err());
    }
}
