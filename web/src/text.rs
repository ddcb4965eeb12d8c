//! The page's one line of text (a model's description, why something was refused, a verdict),
//! in a fixed buffer: setting it never allocates, where a growing `String` would leave its old
//! buffers behind in the page's bump allocator ([`crate::heap`]).

use core::fmt;

/// Longest text kept; longer text is cut at a character boundary.
pub const CAPACITY: usize = 480;

/// UTF-8 text of at most [`CAPACITY`] bytes.
pub struct Text {
    bytes: [u8; CAPACITY],
    len: usize,
}

impl Text {
    /// Empty text.
    pub const fn new() -> Self {
        Text {
            bytes: [0; CAPACITY],
            len: 0,
        }
    }

    /// Replaces the text with `value`'s display.
    pub fn set(&mut self, value: impl fmt::Display) {
        self.len = 0;
        // Writing never fails: what does not fit is dropped.
        let _ = fmt::write(self, format_args!("{value}"));
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Always whole characters (see `write_str`); `unwrap_or` keeps the error's formatting
        // code out of the page's module.
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl Default for Text {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Write for Text {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = CAPACITY - self.len;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_at_a_character_boundary() {
        let mut t = Text::new();
        t.set(format_args!("{}", "é".repeat(CAPACITY)));
        assert_eq!(t.as_str().len(), CAPACITY);
        t.set(format_args!("x{}", "é".repeat(CAPACITY)));
        assert_eq!(t.as_str().len(), CAPACITY - 1);
        t.set("short");
        assert_eq!(t.as_str(), "short");
    }
}
