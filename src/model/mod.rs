//! The engine's data model: values, change events, stream positions. No I/O.

mod event;
mod event_line;
mod image;
pub mod json;
mod number_form;
mod plain_json;
mod schema;
mod sequence;
mod value;

pub use event::{ChangeEvent, Op, Position};
pub use image::Image;
pub use number_form::{decimal_shape_of, DecimalShape};
pub use plain_json::{
    json_number, json_number_text, plain_item, push_json_number, push_json_string,
    write_plain_item, write_plain_value,
};
pub use schema::{KeyAttribute, KeyKind, TableSchema, VersionScheme};
pub use sequence::{
    time_version, SequenceNumber, SequenceNumberError, MAX_SEQUENCE_DIGITS,
    TIME_VERSION_TIE_DIGITS, VERSION_DIGITS,
};
pub use value::{canonical_item, AttributeValue, Item, Number, NumberError};
