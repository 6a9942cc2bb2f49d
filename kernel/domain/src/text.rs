//! Text hygiene and the one size policy for what clients send.
//!
//! Names, identifiers, tags and ids are compared byte for byte, so characters a
//! reader cannot see would make two values that look the same differ (`alice`
//! and `alice\u{200b}` became two customers) or make one look like another
//! (a right-to-left override reverses what follows it). [`check`] refuses
//! them wherever a client names something; free text (a reason, a
//! description) only loses its control characters' meaning and is checked too.
//!
//! Sizes: every list a client sends and every free-text value has a bound,
//! the same across the API, so that no request is unbounded where a
//! neighbouring one is bounded.

use crate::FieldError;

/// Values of one list a client sends (a segment's `in` list, a journey's `in` test).
pub const MAX_ITEMS: usize = 1000;
/// Characters of one free-text value (a message variable, a compared value, a reason).
pub const MAX_TEXT: usize = 1000;
/// Payload tests of one journey trigger, goal or branch.
pub const MAX_FILTERS: usize = 50;
/// Variables of one message or send step.
pub const MAX_VARIABLES: usize = 50;

/// True for characters no name, identifier, tag or id may hold: control
/// characters (NUL included), bidirectional overrides, embeddings and
/// isolates, and zero-width or invisible formatting characters.
pub fn is_forbidden(c: char) -> bool {
    c.is_control() || is_invisible(c)
}

/// Characters a console would show as nothing, or that reorder what follows. Plugins' tags and
/// reasons are held to this too (`Decision::check`), where line breaks are allowed.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}' // zero-width space, non-joiner, joiner; LRM, RLM
        | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
        | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
        | '\u{2066}'..='\u{206F}' // bidi isolates, deprecated format characters
        | '\u{061C}' // Arabic letter mark
        | '\u{180E}' // Mongolian vowel separator
        | '\u{FEFF}' // zero-width no-break space (BOM)
        | '\u{00AD}' // soft hyphen
        | '\u{FFF9}'..='\u{FFFB}' // interlinear annotations
    )
}

/// The first forbidden character of `value`, if any.
pub fn forbidden_in(value: &str) -> Option<char> {
    value.chars().find(|c| is_forbidden(*c))
}

/// Refuse `value` if it holds a forbidden character, naming `field` and the character.
pub fn check(field: &str, value: &str) -> Result<(), FieldError> {
    match forbidden_in(value) {
        None => Ok(()),
        Some(c) => Err(FieldError::new(
            field,
            format!("must not contain control, bidirectional-override or zero-width characters (found U+{:04X})", c as u32),
        )),
    }
}

/// Free text (a reason, a description, a message variable): no NUL or other
/// control character except line breaks and tabs, no bidi override or
/// zero-width character, at most `max` characters.
pub fn check_free(field: &str, value: &str, max: usize) -> Result<(), FieldError> {
    if let Some(c) = value.chars().find(|c| is_forbidden(*c) && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(FieldError::new(
            field,
            format!("must not contain control, bidirectional-override or zero-width characters (found U+{:04X})", c as u32),
        ));
    }
    if value.chars().count() > max {
        return Err(FieldError::new(field, format!("must be at most {max} characters")));
    }
    Ok(())
}

/// A required text of a request (a name, a reason, an idempotency key): not blank, and
/// [`check_free`].
pub fn check_required(field: &str, value: &str, max: usize) -> Result<(), FieldError> {
    if value.trim().is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    check_free(field, value, max)
}

/// JSON given to the kernel to keep and to query (a customer's custom attributes, an
/// event a plugin emits): no string or key in it may hold NUL (U+0000), which
/// PostgreSQL's `jsonb` refuses while SQLite's JSON keeps it, so that a value is found,
/// or not, the same on either backend. The field named is the path of the first one.
pub fn check_json(field: &str, value: &serde_json::Value) -> Result<(), FieldError> {
    let nul = |path: String| Err(FieldError::new(path, "must not contain the NUL character (U+0000)"));
    match value {
        serde_json::Value::String(s) if s.contains('\0') => nul(field.to_owned()),
        serde_json::Value::Array(items) => items.iter().enumerate().try_for_each(|(i, item)| check_json(&format!("{field}[{i}]"), item)),
        serde_json::Value::Object(map) => map.iter().try_for_each(|(key, item)| {
            let path = format!("{field}.{key}");
            if key.contains('\0') { nul(path) } else { check_json(&path, item) }
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_holding_nul_anywhere_is_refused_with_its_path() {
        use serde_json::json;
        assert!(check_json("attributes", &json!({"note": "ok", "list": [1, "两", {"a": null}]})).is_ok());
        let cases = [
            (json!({"note": "a\u{0}b"}), "attributes.note"),
            (json!({"list": [1, ["x", "\u{0}"]]}), "attributes.list[1][1]"),
            (json!({"k\u{0}": 1}), "attributes.k\u{0}"),
        ];
        for (value, path) in cases {
            assert_eq!(check_json("attributes", &value).unwrap_err().field, path, "{value}");
        }
    }

    #[test]
    fn invisible_and_reordering_characters_are_refused() {
        for bad in ["alice\u{200b}", "a\u{0}b", "\u{202e}gnp.exe", "x\u{2066}y", "\u{feff}bom", "tab\there", "soft\u{ad}hyphen"] {
            assert!(check("name", bad).is_err(), "{bad:?}");
        }
        for good in ["alice", "小明的店", "Ming Li", "C-0001", "【某某旗舰店】", "emoji 🎉"] {
            assert_eq!(check("name", good), Ok(()), "{good:?}");
        }
        assert_eq!(check("tag", "vip\u{200d}").unwrap_err().field, "tag");
        assert!(check_free("reason", "line\nbreak\tok", 100).is_ok());
        assert!(check_free("reason", "nul\u{0}", 100).is_err());
        assert!(check_free("reason", &"x".repeat(101), 100).is_err());
    }
}
