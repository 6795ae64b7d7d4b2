//! Audit: what an auditor asks of the store, answered from the histories alone.
//!
//! - [`chain`]: the approval chain of an instance in business words (who, which role, when,
//!   the comment, the guards that routed it, the definition version);
//! - [`export`]: every approval step matching a query, one row each, streamed;
//! - [`verify`]: every hash chain, every snapshot against its history, the derived records
//!   against the snapshots, the definition sources against their hashes, and a store digest
//!   that detects a deleted instance;
//! - [`replay`]: the recorded commands run again through the pure step;
//! - [`sod`]: separation of duties, one actor doing two steps that need two people.
//!
//! Nothing here writes to the store. Everything reads it through [`crate::store::Store`]'s
//! scans in key order, so a store of any size is audited in constant memory.

pub mod chain;
pub mod export;
pub mod replay;
pub mod sod;
pub mod verify;
