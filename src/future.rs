//! The boxed future the engine's object-safe traits return
//! ([`crate::coordinator::Ownership`], sources' shard readers).

use std::future::Future;
use std::pin::Pin;

/// A heap-allocated, sendable future borrowing for `'a`, resolving to `T`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
