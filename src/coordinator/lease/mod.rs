//! Shard leases shared by many workers through a lease table: the pure
//! balancing decisions ([`balance`]), tested with a simulated fleet, and
//! the DynamoDB lease table in KCL's item shape ([`table`]).

pub mod balance;
pub mod kcl;
pub mod owner;
pub mod snapshot_items;
mod snapshot_segments;
pub mod snapshots;
pub mod table;

#[cfg(test)]
mod simulation_tests;

pub use balance::{plan, BalanceSettings, ExpiryWatch, LeaseView, Plan};
pub use owner::{lease_key, LeaseOwnership};
pub use snapshots::LeaseSnapshots;
pub use table::{Lease, LeaseTable, LeaseTableError, Written};
