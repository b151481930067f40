//! RFC 4251 §5 data types: the stateless encoding layer.
//!
//! Everything here borrows; nothing allocates on the read side. Message structs live in the
//! layer that owns them (`transport::msgs`, `auth::msgs`, `connection::msgs`); this module only
//! knows primitives. `json` is the one non-SSH encoding here: JSON string literals for log lines
//! and recordings.

mod error;
pub mod json;
mod mpint;
pub mod msg_no;
mod name_list;
mod reader;
mod writer;

pub use error::DecodeError;
pub use mpint::{mpint_encoded_len, write_mpint_bytes};
pub use name_list::NameList;
pub use reader::Reader;
pub use writer::Writer;

/// Hard cap on any single length-prefixed field. No SSH field can exceed one packet, whose
/// payload is bounded by [`crate::packet::MAX_PACKET_LEN`].
pub const MAX_FIELD_LEN: usize = 256 * 1024;
