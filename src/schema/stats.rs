//! What a sample of items says about each top-level attribute: its
//! DynamoDB types and how often each appears, how often it is present,
//! numeric range (compared exactly, as decimals), digits and scale, text
//! and binary lengths, the nested shape of maps and lists, the column kind
//! that holds every value, and whether the types conflict.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};

use super::kind::ColumnKind;
use crate::model::{AttributeValue, Item, Number};

/// Levels of maps and lists below a top-level attribute whose shape is kept.
pub const MAX_DEPTH: usize = 3;

/// Distinct child attribute names kept per map; more are only counted.
pub const MAX_FIELDS: usize = 64;

/// The statistics of a sample of items.
#[derive(Debug, Clone, Default)]
pub struct SampleStats {
    /// Items observed.
    pub items: u64,
    /// Per top-level attribute, by name.
    pub attributes: BTreeMap<String, AttributeStats>,
}

impl SampleStats {
    /// Observes one item (every top-level attribute it holds).
    pub fn observe(&mut self, item: &Item) {
        self.items += 1;
        for (name, value) in item {
            self.attributes
                .entry(name.clone())
                .or_default()
                .observe(value);
        }
    }

    /// How often `attribute` was present, as a share of the items (0 to 1;
    /// 0 for an empty sample).
    pub fn presence(&self, attribute: &str) -> f64 {
        match (self.attributes.get(attribute), self.items) {
            (Some(stats), items) if items > 0 => stats.present as f64 / items as f64,
            _ => 0.0,
        }
    }
}

/// The type counts and nested structure of the values at one place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shape {
    /// Values seen per DynamoDB type tag (`S`, `N`, …, `NULL`).
    pub types: BTreeMap<&'static str, u64>,
    /// For maps (`M`): each child attribute's shape, by name.
    pub fields: BTreeMap<String, Shape>,
    /// For maps: child attributes not kept (beyond [`MAX_FIELDS`] names).
    pub fields_dropped: u64,
    /// For lists (`L`): the shape of their elements, all lists together.
    pub elements: Option<Box<Shape>>,
    /// True when maps or lists sat deeper than [`MAX_DEPTH`] and were not followed.
    pub truncated: bool,
}

impl Shape {
    /// Counts `value` and, `depth` levels below the top, what it holds.
    fn observe(&mut self, value: &AttributeValue, depth: usize) {
        *self.types.entry(value.type_tag()).or_default() += 1;
        match value {
            AttributeValue::M(map) if depth < MAX_DEPTH => {
                for (name, child) in map {
                    let known = self.fields.len();
                    match self.fields.get_mut(name) {
                        Some(shape) => shape.observe(child, depth + 1),
                        None if known < MAX_FIELDS => {
                            let mut shape = Shape::default();
                            shape.observe(child, depth + 1);
                            self.fields.insert(name.clone(), shape);
                        }
                        None => self.fields_dropped += 1,
                    }
                }
            }
            AttributeValue::L(list) if depth < MAX_DEPTH => {
                let elements = self.elements.get_or_insert_with(Box::default);
                for element in list {
                    elements.observe(element, depth + 1);
                }
            }
            AttributeValue::M(_) | AttributeValue::L(_) => self.truncated = true,
            _ => {}
        }
    }

    /// Values seen in all (every type, NULL included).
    pub fn total(&self) -> u64 {
        self.types.values().sum()
    }

    /// The type tags seen other than `NULL`.
    pub fn non_null_types(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.types.keys().copied().filter(|tag| *tag != "NULL")
    }
}

/// The smallest and largest number seen, compared exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberRange {
    /// The smallest.
    pub min: Number,
    /// The largest.
    pub max: Number,
    /// Most digits before the point of any number.
    pub max_integer_digits: u32,
    /// Most digits after the point of any number (the scale a decimal needs).
    pub max_scale: u32,
}

impl NumberRange {
    /// Digits a decimal needs to hold every number seen (integer digits
    /// plus scale, at least 1).
    pub fn precision(&self) -> u32 {
        (self.max_integer_digits + self.max_scale).max(1)
    }
}

/// The shortest and longest value seen (characters of S, bytes of B).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LengthRange {
    /// The shortest.
    pub min: usize,
    /// The longest.
    pub max: usize,
}

impl LengthRange {
    fn widen(range: &mut Option<Self>, length: usize) {
        let next = match *range {
            Some(r) => Self {
                min: r.min.min(length),
                max: r.max.max(length),
            },
            None => Self {
                min: length,
                max: length,
            },
        };
        *range = Some(next);
    }
}

/// What the sample says about one top-level attribute.
#[derive(Debug, Clone, Default)]
pub struct AttributeStats {
    /// Items that hold the attribute (a NULL value counts as present).
    pub present: u64,
    /// Type counts and nested shape.
    pub shape: Shape,
    /// Range, digits and scale of the numbers (N values, not set members).
    pub numbers: Option<NumberRange>,
    /// Lengths of S values, in characters.
    pub text_lengths: Option<LengthRange>,
    /// Lengths of B values, in bytes.
    pub binary_lengths: Option<LengthRange>,
    /// The column kind that holds every value, folded value by value as a
    /// live column widens; `None` while only NULLs were seen.
    pub kind: Option<ColumnKind>,
    /// The narrowest kind of each value, as [`ColumnKind::of_value`] gives it.
    pub value_kinds: HashSet<ColumnKind>,
}

impl AttributeStats {
    /// Observes one value of the attribute.
    pub fn observe(&mut self, value: &AttributeValue) {
        self.present += 1;
        self.shape.observe(value, 0);
        match value {
            AttributeValue::N(number) => self.observe_number(number),
            AttributeValue::S(text) => {
                LengthRange::widen(&mut self.text_lengths, text.chars().count())
            }
            AttributeValue::B(bytes) => LengthRange::widen(&mut self.binary_lengths, bytes.len()),
            _ => {}
        }
        if let Some(own) = ColumnKind::of_value(value) {
            self.value_kinds.insert(own);
            self.kind = Some(match self.kind {
                Some(kind) => kind.widened_for(value),
                None => own,
            });
        }
    }

    fn observe_number(&mut self, number: &Number) {
        let shape = number.decimal_shape();
        match &mut self.numbers {
            Some(range) => {
                if compare_numbers(number, &range.min) == Ordering::Less {
                    range.min = number.clone();
                }
                if compare_numbers(number, &range.max) == Ordering::Greater {
                    range.max = number.clone();
                }
                range.max_integer_digits = range.max_integer_digits.max(shape.integer_digits);
                range.max_scale = range.max_scale.max(shape.scale);
            }
            None => {
                self.numbers = Some(NumberRange {
                    min: number.clone(),
                    max: number.clone(),
                    max_integer_digits: shape.integer_digits,
                    max_scale: shape.scale,
                })
            }
        }
    }

    /// True when the values disagree: more than one DynamoDB type other
    /// than NULL, or a column kind that is none of the values' own (numbers
    /// whose scales and digits no one decimal holds end as text).
    pub fn conflict(&self) -> bool {
        self.shape.non_null_types().count() > 1
            || self
                .kind
                .is_some_and(|kind| !self.value_kinds.contains(&kind))
    }
}

/// Orders two numbers by value, exactly (any digits, any exponent).
pub fn compare_numbers(a: &Number, b: &Number) -> Ordering {
    let (a, b) = (Decomposed::of(a.as_str()), Decomposed::of(b.as_str()));
    match (a.sign(), b.sign()) {
        (x, y) if x != y => x.cmp(&y),
        (0, _) => Ordering::Equal,
        (sign, _) => {
            let magnitude = a
                .magnitude
                .cmp(&b.magnitude)
                .then_with(|| compare_digits(&a.digits, &b.digits));
            if sign < 0 {
                magnitude.reverse()
            } else {
                magnitude
            }
        }
    }
}

/// A number as sign, significant digits and the power of ten just above
/// its first digit.
struct Decomposed {
    negative: bool,
    digits: String,
    magnitude: i64,
}

impl Decomposed {
    fn of(text: &str) -> Self {
        let (negative, unsigned) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
            Some(at) => (&unsigned[..at], unsigned[at + 1..].parse().unwrap_or(0)),
            None => (unsigned, 0i64),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let all: String = whole.chars().chain(fraction.chars()).collect();
        let leading = all.len() - all.trim_start_matches('0').len();
        let digits = all.trim_matches('0').to_owned();
        let magnitude = exponent + whole.len() as i64 - leading as i64;
        Self {
            negative,
            digits,
            magnitude,
        }
    }

    fn sign(&self) -> i8 {
        match (self.digits.is_empty(), self.negative) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        }
    }
}

/// Compares digit strings of equal magnitude (a missing digit is 0).
fn compare_digits(a: &str, b: &str) -> Ordering {
    let width = a.len().max(b.len());
    let pad = |s: &str| format!("{s:0<width$}");
    pad(a).cmp(&pad(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str) -> AttributeValue {
        AttributeValue::N(Number::parse(text).unwrap())
    }

    fn number(text: &str) -> Number {
        Number::parse(text).unwrap()
    }

    fn item(pairs: Vec<(&str, AttributeValue)>) -> Item {
        pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    #[test]
    fn numbers_compare_exactly() {
        let cases = [
            ("1", "2", Ordering::Less),
            ("-1", "1", Ordering::Less),
            ("0", "-0.0", Ordering::Equal),
            ("1.50", "15E-1", Ordering::Equal),
            ("-12.5", "-12.25", Ordering::Less),
            ("0.001", "0.0009", Ordering::Greater),
            ("1E+3", "999.999", Ordering::Greater),
            (
                "99999999999999999999999999999999999999",
                "99999999999999999999999999999999999998",
                Ordering::Greater,
            ),
            (
                "12345678901234567890123456789012345678",
                "1.2345678901234567890123456789012345679E+37",
                Ordering::Less,
            ),
            ("-1E-130", "0", Ordering::Less),
        ];
        for (a, b, expected) in cases {
            assert_eq!(
                compare_numbers(&number(a), &number(b)),
                expected,
                "{a} vs {b}"
            );
            assert_eq!(
                compare_numbers(&number(b), &number(a)),
                expected.reverse(),
                "{b} vs {a}"
            );
        }
    }

    #[test]
    fn numbers_keep_range_digits_and_scale() {
        let mut stats = SampleStats::default();
        for text in [
            "12",
            "-3.25",
            "99999999999999999999999999999999999999",
            "0.125",
        ] {
            stats.observe(&item(vec![("price", n(text))]));
        }
        stats.observe(&item(vec![("other", n("1"))]));
        let price = &stats.attributes["price"];
        let range = price.numbers.as_ref().unwrap();
        assert_eq!(range.min.as_str(), "-3.25");
        assert_eq!(range.max.as_str(), "99999999999999999999999999999999999999");
        assert_eq!((range.max_integer_digits, range.max_scale), (38, 3));
        assert_eq!(range.precision(), 41);
        assert_eq!(price.present, 4);
        assert!((stats.presence("price") - 0.8).abs() < 1e-9);
        assert_eq!(stats.presence("missing"), 0.0);
        // 38 integer digits and 3 decimals fit no decimal: text, a conflict
        // though every value is a number.
        assert_eq!(price.kind, Some(ColumnKind::Text));
        assert!(price.conflict());
    }

    #[test]
    fn ints_and_decimals_share_a_decimal_without_conflict() {
        let mut stats = AttributeStats::default();
        for value in [n("1"), n("2.5"), AttributeValue::Null, n("-7")] {
            stats.observe(&value);
        }
        assert_eq!(stats.kind, Some(ColumnKind::Decimal { scale: 6 }));
        assert!(!stats.conflict(), "NULL and a wider number are no conflict");
        assert_eq!(stats.shape.types["NULL"], 1);
        assert_eq!(stats.present, 4);
    }

    #[test]
    fn mixed_types_conflict_and_widen() {
        let mut stats = AttributeStats::default();
        stats.observe(&AttributeValue::S(String::new()));
        stats.observe(&n("5"));
        assert!(stats.conflict());
        assert_eq!(stats.kind, Some(ColumnKind::Text));
        assert_eq!(stats.text_lengths, Some(LengthRange { min: 0, max: 0 }));
        stats.observe(&AttributeValue::M(Item::new()));
        assert_eq!(stats.kind, Some(ColumnKind::Json));
        assert_eq!(
            stats.shape.non_null_types().collect::<Vec<_>>(),
            ["M", "N", "S"]
        );

        let mut only_null = AttributeStats::default();
        only_null.observe(&AttributeValue::Null);
        assert_eq!(only_null.kind, None);
        assert!(!only_null.conflict());
    }

    #[test]
    fn binary_and_sets() {
        let mut stats = AttributeStats::default();
        stats.observe(&AttributeValue::B(vec![1, 2, 3]));
        stats.observe(&AttributeValue::B(Vec::new()));
        assert_eq!(stats.binary_lengths, Some(LengthRange { min: 0, max: 3 }));
        assert_eq!(stats.kind, Some(ColumnKind::Binary));
        let mut sets = AttributeStats::default();
        sets.observe(&AttributeValue::Ss(vec!["a".into()]));
        sets.observe(&AttributeValue::Ns(vec![number("1")]));
        assert_eq!(sets.kind, Some(ColumnKind::TextArray));
        assert!(sets.conflict(), "SS and NS are two types");
        assert!(sets.numbers.is_none(), "set members are not ranged");
    }

    #[test]
    fn nested_shape_is_kept_a_few_levels_deep() {
        let leaf = |v: AttributeValue| item(vec![("x", v)]);
        let deep = AttributeValue::M(leaf(AttributeValue::M(leaf(AttributeValue::M(leaf(
            AttributeValue::M(leaf(n("1"))),
        ))))));
        let mut stats = AttributeStats::default();
        stats.observe(&AttributeValue::M(item(vec![
            ("name", AttributeValue::S("a".into())),
            (
                "tags",
                AttributeValue::L(vec![n("1"), AttributeValue::S("b".into())]),
            ),
        ])));
        stats.observe(&AttributeValue::M(item(vec![(
            "name",
            AttributeValue::Null,
        )])));
        stats.observe(&deep);
        let fields = &stats.shape.fields;
        assert_eq!(
            fields["name"].types,
            BTreeMap::from([("NULL", 1), ("S", 1)])
        );
        let elements = fields["tags"].elements.as_ref().unwrap();
        assert_eq!(elements.types, BTreeMap::from([("N", 1), ("S", 1)]));
        let level3 = &fields["x"].fields["x"].fields["x"];
        assert_eq!(level3.types["M"], 1);
        assert!(level3.fields.is_empty() && level3.truncated);
        assert_eq!(stats.shape.types["M"], 3);
        assert_eq!(stats.kind, Some(ColumnKind::Json));
        assert!(!stats.conflict());
    }

    #[test]
    fn map_fields_are_bounded() {
        let wide: Item = (0..MAX_FIELDS + 5)
            .map(|i| (format!("f{i}"), n("1")))
            .collect();
        let mut stats = AttributeStats::default();
        stats.observe(&AttributeValue::M(wide));
        assert_eq!(stats.shape.fields.len(), MAX_FIELDS);
        assert_eq!(stats.shape.fields_dropped, 5);
    }
}
