use std::fmt;

/// Why a message could not be decoded. Each variant says what was short or too long, so the
/// DISCONNECT text and the log line can name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes left than the field needs.
    Truncated { field: &'static str, needed: usize, left: usize },
    /// A length prefix larger than the bound for that field.
    TooLong { field: &'static str, len: usize, max: usize },
    /// Bytes left over after the last field of a message.
    TrailingBytes { message: &'static str, left: usize },
    /// A boolean, enum or text field with a value that is not allowed.
    Invalid { field: &'static str },
    /// A name-list that is not ASCII, has empty names or contains a comma-less mess.
    BadNameList { field: &'static str },
    /// An mpint with a redundant leading byte or, where not allowed, negative.
    BadMpint { field: &'static str },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::Truncated { field, needed, left } => {
                write!(f, "truncated {field}: needs {needed} bytes, {left} left")
            }
            DecodeError::TooLong { field, len, max } => {
                write!(f, "{field} too long: {len} bytes (max {max})")
            }
            DecodeError::TrailingBytes { message, left } => {
                write!(f, "{left} trailing bytes after {message}")
            }
            DecodeError::Invalid { field } => write!(f, "invalid {field}"),
            DecodeError::BadNameList { field } => write!(f, "malformed name-list {field}"),
            DecodeError::BadMpint { field } => write!(f, "malformed mpint {field}"),
        }
    }
}

impl std::error::Error for DecodeError {}
