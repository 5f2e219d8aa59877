//! The rules every piece of text Lablet accepts follows, written once.
//!
//! Lengths are counted in characters (Unicode scalar values), as the messages say. No text may
//! hold U+0000: PostgreSQL cannot store it, and nothing legitimate sends it. Names and ids
//! (`name`, `region`, `reservation_id` …) are single-line: no control character at all, and
//! not blank. Free text (a reason, a note) may be blank and may break lines.

/// Why `value` cannot be a name or an id of at most `max_chars` characters, if it cannot.
pub fn name_problem(value: &str, max_chars: usize) -> Option<String> {
    if value.trim().is_empty() {
        return Some("must not be empty".into());
    }
    if value.chars().any(char::is_control) {
        return Some("must not contain control characters".into());
    }
    length_problem(value, max_chars)
}

/// Why `value` cannot be free text of at most `max_chars` characters, if it cannot.
pub fn free_text_problem(value: &str, max_chars: usize) -> Option<String> {
    if value.contains('\0') {
        return Some("must not contain NUL characters".into());
    }
    length_problem(value, max_chars)
}

fn length_problem(value: &str, max_chars: usize) -> Option<String> {
    (value.chars().count() > max_chars).then(|| format!("must be at most {max_chars} characters"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_counted_in_characters_not_bytes() {
        let accented = "é".repeat(10);
        assert_eq!(accented.len(), 20);
        assert_eq!(name_problem(&accented, 10), None);
        assert_eq!(
            name_problem(&"é".repeat(11), 10).as_deref(),
            Some("must be at most 10 characters")
        );
        assert_eq!(free_text_problem(&accented, 10), None);
    }

    #[test]
    fn names_are_single_line_and_not_blank_free_text_holds_no_nul() {
        assert_eq!(name_problem("  ", 10).as_deref(), Some("must not be empty"));
        assert!(name_problem("a\u{0}b", 10).is_some());
        assert!(name_problem("a\nb", 10).is_some());
        assert_eq!(free_text_problem("", 10), None);
        assert_eq!(free_text_problem("line\nnext", 10), None);
        assert_eq!(
            free_text_problem("a\u{0}", 10).as_deref(),
            Some("must not contain NUL characters")
        );
    }
}
