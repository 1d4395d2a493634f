//! The `[[transforms]]` settings: which transform, with which arguments.

use serde::Deserialize;

use crate::model::Op;

/// One transform.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TransformConfig {
    /// Renames an attribute of the images.
    Rename {
        /// Current name.
        from: String,
        /// New name.
        to: String,
    },
    /// Removes attributes from the images.
    Drop {
        /// Names to remove.
        attributes: Vec<String>,
    },
    /// Converts a string attribute to a number or a timestamp (epoch number).
    Cast {
        /// The attribute.
        attribute: String,
        /// Target.
        to: CastTarget,
    },
    /// Keeps (or, with `exclude`, drops) the changes that match every given condition.
    Filter {
        /// Operations (`insert`, `modify`, `remove`); any when empty.
        #[serde(default)]
        ops: Vec<Op>,
        /// Source tables; any when empty.
        #[serde(default)]
        tables: Vec<String>,
        /// Attribute of the new image (old image for removes) to test.
        field: Option<String>,
        /// Text the field must equal (S, N text, or `true`/`false`); with no
        /// `equals`, the field must merely exist.
        equals: Option<String>,
        /// Drop the matching changes instead of keeping them.
        #[serde(default)]
        exclude: bool,
    },
}

/// What `cast` converts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CastTarget {
    /// A number (from decimal text).
    Number,
    /// Epoch milliseconds (from an RFC 3339 string).
    TimestampMs,
    /// Epoch seconds (from an RFC 3339 string).
    TimestampS,
}
