//! An image field of a stream record, read the fast way (the JSON skipped
//! by serde_json, the image checked and copied by the model's walk) or the
//! careful way (a path-tracking deserializer names the exact place of an
//! error).

use serde::de::{self, DeserializeSeed, Deserializer};

use crate::model::json::ImageTextSeed;
use crate::model::Image;

/// An image field read by the fast path: serde_json checks the JSON syntax
/// while it skips the image, the model's walk checks the DynamoDB structure
/// and copies the text, and anything it leaves undecided goes through
/// [`ImageTextSeed`]. Errors carry no path: callers re-read a failed record with
/// [`CarefulImage`] to name it.
pub(super) struct FastImage(pub(super) Image);

impl<'de> serde::Deserialize<'de> for FastImage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <&'de serde_json::value::RawValue>::deserialize(deserializer)?;
        Image::parse(raw.get()).map(Self).map_err(de::Error::custom)
    }
}

/// An image field read by [`ImageTextSeed`] alone, so that a path-tracking
/// deserializer names the exact place of an error.
pub(super) struct CarefulImage(pub(super) Image);

impl<'de> serde::Deserialize<'de> for CarefulImage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ImageTextSeed
            .deserialize(deserializer)
            .map(|text| Self(Image::from_validated_json(text)))
    }
}

/// A missing image field (`#[serde(default = "…")]` without a `Default` bound).
pub(super) fn absent<I>() -> Option<I> {
    None
}

/// The image inside either way of reading it.
pub(super) trait ImageField {
    /// The decoded image.
    fn into_image(self) -> Image;
}

impl ImageField for FastImage {
    fn into_image(self) -> Image {
        self.0
    }
}

impl ImageField for CarefulImage {
    fn into_image(self) -> Image {
        self.0
    }
}
