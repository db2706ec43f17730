//! The detectors of `tally explain`: each looks at one thing in a plan and
//! says what is wrong with it and what fixes it (pure: a plan and a
//! [`Catalog`](crate::doctor::Catalog) in, [`Finding`](crate::doctor::Finding)s out).
//!
//! By what they look at: [`scans`] (`seq_scan`, `filter_after_index`),
//! [`partitions`] (`partitions_not_pruned`), [`joins`] (`nested_loop`),
//! [`memory`] (`spill`), [`estimates`] (`misestimate`), [`aggregates`]
//! (`use_aggregate`); the table in [`crate::doctor`] says what each finds.
//!
//! [`walk`] visits the plan and calls them; the fixes they suggest are built
//! in [`crate::doctor::fixes`].

pub(super) mod aggregates;
mod estimates;
mod joins;
mod memory;
mod partitions;
mod scans;
mod walk;

pub use walk::analyze;
