//! sopflow: a service centre's operating manual as running, auditable processes.
//!
//! Each procedure is a YAML state machine (`workflows/*.yaml`) whose guards, actions and
//! deadlines are rhai scripts (`rules/*.rhai`). This crate reads and checks those files
//! ([`catalog`], [`definition`], [`validate`]), compiles their scripts in a sandbox
//! ([`script`]), and draws them ([`diagram`]). See `ARCHITECTURE.md` for the map.

#![warn(missing_docs)]

pub mod audit;
pub mod calendar;
pub mod catalog;
pub mod clock;
pub mod definition;
#[cfg(feature = "delivery")]
pub mod delivery;
pub mod deploy;
pub mod diagnostic;
pub mod diagram;
pub mod engine;
pub mod i18n;
pub mod library;
pub mod machine;
pub mod notify;
pub mod scenario;
pub mod schema;
pub mod script;
#[cfg(feature = "server")]
pub mod server;
pub mod store;
pub mod validate;

pub use catalog::{Catalog, LoadReport};
// The embedding API in one import: `use sopflow::{Engine, Config, StartRequest, Fire, Actor};`.
pub use diagnostic::{Code, Diagnostic, Severity, Span};
pub use engine::{Config, Engine, EngineError, Fire, StartRequest};
pub use machine::{Actor, Refusal};
pub use store::Query;
