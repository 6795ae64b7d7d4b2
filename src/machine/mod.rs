//! The machine: the pure step of a workflow instance.
//!
//! Given a definition version, an instance snapshot and a command, [`step`] returns the
//! history [`Entry`] to append or a typed [`Refusal`]. It does no I/O, reads no clock (time is
//! in the command) and uses no randomness, so the engine, scenario tests and audit replay all
//! run the same function and get the same answer. A snapshot changes only by
//! [`Instance::apply`]ing entries, which is how the store rebuilds snapshots from the log.

pub mod access;
mod approval;
pub mod audit;
mod canonical;
pub mod command;
mod context;
mod enter;
pub mod entry;
pub mod instance;
pub mod migrate;
pub mod refusal;
mod step;
mod timer;
pub mod value;
pub mod writes;

pub use access::{may_read, start_roles};
pub use command::{Actor, Command, Start};
pub use entry::{Entry, EntryKind, Text};
pub use instance::{ChainError, Instance};
pub use migrate::{Mapping, Migrate, Plan, migrate, plan};
pub use refusal::Refusal;
pub use step::{
    Available, MAX_BUSINESS_KEY, Next, Turn, available, check_business_key, child_finished,
    children_done, may_act_in, next, offered, start, step,
};
pub use timer::fire_timer;
pub use writes::writable_fields;
