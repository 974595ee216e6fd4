//! The names people read: identities (the name everyone sees beside a member) and room names.
//! The one set of rules, used by the token minter and verifier, the server's join, the Rust
//! participant (every credential in the group), and the page (through wasm).
//!
//! A name must be readable as what it is: 1 to its limit of bytes, no leading or trailing
//! space, no control characters, nothing that reorders or hides text. Names that pass can
//! still *look alike* ("alice" and "аlice" with a Cyrillic а): [`skeleton`] maps a name to
//! its Unicode TR39 confusable skeleton, and clients flag members whose skeletons match.

use thiserror::Error;

/// The longest an identity may be, in bytes (UTF-8).
pub const MAX_IDENTITY_BYTES: usize = 64;

/// The longest a room name may be, in bytes (UTF-8).
pub const MAX_ROOM_BYTES: usize = 128;

/// Why a name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NameError {
    #[error("it is empty")]
    Empty,
    #[error("it is longer than {max} bytes")]
    TooLong { max: usize },
    #[error("it starts or ends with a space")]
    Padded,
    #[error("it holds a control character")]
    Control,
    #[error("it holds a character that reorders or hides text (bidi control, zero-width)")]
    Invisible,
}

impl NameError {
    /// A short stable name for the page to word the refusal in its own way.
    pub fn code(&self) -> &'static str {
        match self {
            NameError::Empty => "empty",
            NameError::TooLong { .. } => "too_long",
            NameError::Padded => "padded",
            NameError::Control => "control",
            NameError::Invisible => "invisible",
        }
    }
}

/// Characters that change how text around them is shown without being seen: bidirectional
/// controls (which can make "alice" out of other letters' order), zero-width and every other
/// Unicode default-ignorable code point (soft hyphen, variation selectors, fillers, tags).
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}'..='\u{1160}' | '\u{17B4}'..='\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FFF0}'..='\u{FFF8}' | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E0FFF}')
}

fn check(name: &str, max: usize) -> Result<(), NameError> {
    if name.trim().is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > max {
        return Err(NameError::TooLong { max });
    }
    if name.trim() != name {
        return Err(NameError::Padded);
    }
    if name.chars().any(char::is_control) {
        return Err(NameError::Control);
    }
    // An emoji's presentation selector (VS15, VS16) after a symbol is what a keyboard types
    // ("❤️"); anywhere else it hides in the name.
    let mut prev: Option<char> = None;
    for c in name.chars() {
        let emoji_style = matches!(c, '\u{FE0E}' | '\u{FE0F}')
            && prev.is_some_and(|p| !p.is_ascii() && !p.is_alphanumeric() && !p.is_whitespace());
        if invisible(c) && !emoji_style {
            return Err(NameError::Invisible);
        }
        prev = Some(c);
    }
    Ok(())
}

/// The rules for an identity: 1 to [`MAX_IDENTITY_BYTES`] bytes, no leading or trailing
/// space, no control characters, nothing that reorders or hides text.
pub fn check_identity(identity: &str) -> Result<(), NameError> {
    check(identity, MAX_IDENTITY_BYTES)
}

/// The rules for a room name: as for an identity, up to [`MAX_ROOM_BYTES`] bytes.
pub fn check_room(room: &str) -> Result<(), NameError> {
    check(room, MAX_ROOM_BYTES)
}

/// The name's Unicode TR39 confusable skeleton: two names with the same skeleton look alike
/// (invisible characters are dropped, and each character becomes its prototype: Cyrillic "а"
/// and Latin "a" alike, capital "I" and small "l" alike).
pub fn skeleton(name: &str) -> String {
    unicode_security::skeleton(name).collect()
}

/// The name with each character outside printable ASCII written as its code point
/// (`"\u{430}lice"` becomes `"<U+0430>lice"`): how to tell apart two names that look alike.
pub fn reveal(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            ' '..='~' => c.to_string(),
            _ => format!("<U+{:04X}>", u32::from(c)),
        })
        .collect()
}

/// Whether two different names look alike (the same name is not "alike", it is the same).
pub fn look_alike(a: &str, b: &str) -> bool {
    a != b && skeleton(a) == skeleton(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_people_could_misread_are_refused() {
        assert_eq!(check_identity("alice"), Ok(()));
        assert_eq!(check_identity("Zoë 🙂 O'Brien"), Ok(()));
        assert_eq!(
            check_identity("Zoë \u{2764}\u{FE0F}"),
            Ok(()),
            "a red heart as typed"
        );
        assert_eq!(check_identity("alice:laptop"), Ok(()));
        assert_eq!(check_identity(""), Err(NameError::Empty));
        assert_eq!(check_identity("   "), Err(NameError::Empty));
        assert_eq!(check_identity(" alice"), Err(NameError::Padded));
        assert_eq!(check_identity("al\nice"), Err(NameError::Control));
        assert_eq!(check_identity("al\u{7f}ice"), Err(NameError::Control));
        assert_eq!(check_identity("\u{202E}ecila"), Err(NameError::Invisible));
        assert_eq!(check_identity("ali\u{200B}ce"), Err(NameError::Invisible));
        assert_eq!(check_identity("alice\u{200B}"), Err(NameError::Invisible));
        for hidden in [
            '\u{00AD}',
            '\u{034F}',
            '\u{3164}',
            '\u{FE0F}',
            '\u{E0061}',
            '\u{180E}',
        ] {
            assert_eq!(
                check_identity(&format!("ali{hidden}ce")),
                Err(NameError::Invisible),
                "{hidden:?}"
            );
        }
        assert_eq!(
            check_identity(&"🙂".repeat(17)),
            Err(NameError::TooLong { max: 64 })
        );
        assert_eq!(check_identity(&"a".repeat(64)), Ok(()));
    }

    #[test]
    fn room_names_follow_the_same_rules_with_a_longer_limit() {
        assert_eq!(check_room("weekly sync"), Ok(()));
        assert_eq!(check_room(&"r".repeat(128)), Ok(()));
        assert_eq!(
            check_room(&"r".repeat(129)),
            Err(NameError::TooLong { max: 128 })
        );
        assert_eq!(check_room(""), Err(NameError::Empty));
        assert_eq!(check_room("board\u{2066}"), Err(NameError::Invisible));
        assert_eq!(check_room("board\t"), Err(NameError::Padded));
    }

    #[test]
    fn names_that_look_alike_share_a_skeleton() {
        // Cyrillic а (U+0430) for the Latin a.
        assert!(look_alike("alice", "\u{0430}lice"));
        // A zero-width space is dropped from the skeleton.
        assert!(look_alike("alice", "alice\u{200B}"));
        // Capital I for small l.
        assert!(look_alike("alice", "aIice"));
        assert!(!look_alike("alice", "alice"), "the same name is the same");
        assert!(!look_alike("alice", "alicia"));
        assert!(!look_alike("Alice", "alice"), "case is visible");
        assert_eq!(reveal("\u{0430}lice"), "<U+0430>lice");
        assert_eq!(reveal("alice\u{200B}"), "alice<U+200B>");
        assert_eq!(reveal("alice"), "alice");
    }
}
