//! The canonical event contract: types, the line parser, and RFC 3339 time.

pub mod as_contract_json;
mod bounds;
mod model;
mod parse;
mod raw;
mod reject;
mod time;

pub use bounds::{approx_bytes, within_bounds, MAX_FIELD_BYTES, MAX_SCOPE_BYTES, MAX_URL_BYTES};
pub use model::{AccessEvent, Common, Event, Text, TokenAction, TokenEvent};
pub use parse::{
    json_reject, parse_event, parse_event_str, REQUIRED_ACCESS, REQUIRED_COMMON, REQUIRED_TOKEN,
};
pub use raw::FIELD_NAMES;
pub use reject::{Reject, RejectKind};
pub use time::{Timestamp, MICROS_PER_SECOND};
