//! Who a mark is for: the watching rules of a table grouped by owner, so
//! that aggregates with the same day rule share one mark per statement.

use super::super::super::{DirtyRule, LiveKey};
use crate::db::quote_literal;

/// Whom a mark is for: one aggregate, or several whose rule is the same
/// (a shared mark: one row a statement, whatever their number; before a
/// refresh it becomes each member's own, sql/incremental/distribute.sql).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Owner<'a> {
    One(&'a str),
    Shared(Vec<&'a str>),
}

impl<'a> Owner<'a> {
    /// The mark's `aggregate` and `members` columns, as SQL.
    pub(super) fn columns(&self) -> (String, String) {
        match self {
            Owner::One(name) => (quote_literal(name), "NULL::text[]".to_string()),
            Owner::Shared(names) => {
                let names: Vec<String> = names.iter().map(|n| quote_literal(n)).collect();
                ("NULL::text".to_string(), format!("ARRAY[{}]::text[]", names.join(", ")))
            }
        }
    }

    pub(super) fn names(&self) -> Vec<&'a str> {
        match self {
            Owner::One(name) => vec![name],
            Owner::Shared(names) => names.clone(),
        }
    }

    pub(super) fn one(&self) -> Option<&'a str> {
        match self {
            Owner::One(name) => Some(name),
            Owner::Shared(_) => None,
        }
    }
}

/// The watching rules by owner: the equal day rules of aggregates without a
/// live key (whose marks carry nothing of their own) share one owner.
pub(super) fn owners<'a>(watchers: &[(&'a str, DirtyRule)], keyed: &[(&str, LiveKey)]) -> Vec<(Owner<'a>, DirtyRule)> {
    let mut owners: Vec<(Owner<'a>, DirtyRule, bool)> = Vec::new();
    for (aggregate, rule) in watchers {
        let shareable = matches!(rule, DirtyRule::DayOf { .. }) && !keyed.iter().any(|(name, _)| name == aggregate);
        match owners.iter_mut().find(|(_, r, s)| *s && shareable && r == rule) {
            Some((owner, _, _)) => *owner = Owner::Shared([owner.names(), vec![*aggregate]].concat()),
            None => owners.push((Owner::One(aggregate), *rule, shareable)),
        }
    }
    owners.into_iter().map(|(owner, rule, _)| (owner, rule)).collect()
}
