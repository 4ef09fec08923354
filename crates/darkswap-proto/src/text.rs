//! Free text carried on the wire (reasons, refusals), cut to a byte cap on a character
//! boundary when encoded and when decoded.

/// `text`, at most `max` bytes of it, never splitting a character.
pub(crate) fn cut_to(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::cut_to;

    #[test]
    fn cuts_on_character_boundaries() {
        assert_eq!(cut_to("abc", 10), "abc");
        assert_eq!(cut_to("abc", 2), "ab");
        assert_eq!(cut_to("éé", 3), "é");
        assert_eq!(cut_to("é", 0), "");
    }
}
