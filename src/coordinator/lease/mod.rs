//! Shard leases shared by many workers through a lease table: the pure
//! balancing decisions ([`balance`]), tested with a simulated fleet.

pub mod balance;

#[cfg(test)]
mod simulation_tests;

pub use balance::{plan, BalanceSettings, ExpiryWatch, LeaseView, Plan};
