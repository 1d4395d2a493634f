//! The enrichment join as a shared, reloadable handle: readers join each
//! change against the table loaded last, while a background task replaces
//! the table when its file changes.

use std::sync::{Arc, PoisonError, RwLock};

use super::{Dimension, EnrichConfig};
use crate::model::ChangeEvent;

/// The join's settings and the dimension table currently in use.
#[derive(Debug)]
pub struct Enrichment {
    config: EnrichConfig,
    current: RwLock<Option<Arc<Dimension>>>,
}

impl Enrichment {
    /// A join with no table loaded yet (changes pass unjoined until
    /// [`Enrichment::replace`] installs one).
    pub fn new(config: EnrichConfig) -> Self {
        Self {
            config,
            current: RwLock::new(None),
        }
    }

    /// The join's settings.
    pub fn config(&self) -> &EnrichConfig {
        &self.config
    }

    /// Installs a newly loaded table; changes joined from now on use it.
    pub fn replace(&self, dimension: Dimension) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(dimension));
    }

    /// The table in use, if one was loaded.
    pub fn current(&self) -> Option<Arc<Dimension>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Joins every change (a left join: changes without a match are kept
    /// as they are).
    pub fn join_all(&self, events: &mut [ChangeEvent]) {
        let Some(dimension) = self.current() else {
            return;
        };
        for event in events {
            dimension.join(event, &self.config.field, &self.config.prefix);
        }
    }
}
