//! What a ClickHouse server supports, from `SELECT version()`.

/// A server version (`major.minor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion {
    /// Major (year-based since 2018: 18, 19, … 26).
    pub major: u32,
    /// Minor.
    pub minor: u32,
}

impl ServerVersion {
    /// Parses `18.16.1` or `26.9.2.1`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().trim_matches('"').split('.');
        Some(Self {
            major: parts.next()?.parse().ok()?,
            minor: parts.next()?.parse().ok()?,
        })
    }

    /// The features the sink adapts to.
    pub fn capabilities(self) -> Capabilities {
        let at_least = |major, minor| self >= ServerVersion { major, minor };
        Capabilities {
            uint256: at_least(21, 7),
            is_deleted: at_least(23, 2),
            bool_type: at_least(21, 12),
        }
    }
}

/// Server features that change the generated DDL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// `UInt256` exists: versions hold every sequence number exactly (up to 40 digits).
    /// Otherwise `_version` is `UInt64`, which holds sequence numbers up to 20 digits.
    pub uint256: bool,
    /// `ReplacingMergeTree(ver, is_deleted)` exists (23.2+).
    pub is_deleted: bool,
    /// The `Bool` type exists (21.12+); `UInt8` otherwise.
    pub bool_type: bool,
}

impl Capabilities {
    /// The type of the `_version` column.
    pub fn version_type(self) -> &'static str {
        if self.uint256 {
            "UInt256"
        } else {
            "UInt64"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_and_new_servers() {
        let old = ServerVersion::parse("18.16.1").unwrap().capabilities();
        assert!(!old.uint256 && !old.is_deleted && !old.bool_type);
        assert_eq!(old.version_type(), "UInt64");
        let new = ServerVersion::parse("\"26.9.2.1\"").unwrap().capabilities();
        assert!(new.uint256 && new.is_deleted && new.bool_type);
        assert!(ServerVersion::parse("x").is_none());
    }
}
