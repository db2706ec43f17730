//! `tally doctor --workload` as people read it.

use std::fmt::Write;

use super::WorkloadReport;
use crate::db::plural;

/// The statements, the proposed indexes with their savings and write costs,
/// the statements that create them, and what they make redundant.
pub fn render_workload(report: &WorkloadReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Workload: the {} statements taking the most time in pg_stat_statements over the last {} ({:.1} s in all).",
        report.statements.len(),
        humantime::format_duration(super::period(report.period_s)),
        report.total_ms / 1000.0
    );
    for (i, statement) in report.statements.iter().enumerate() {
        let query: String = statement.query.split_whitespace().collect::<Vec<_>>().join(" ");
        let short: String = query.chars().take(110).collect();
        let _ = writeln!(
            out,
            "\n{}. {}{}\n   {}, mean {:.2} ms, total {:.1} ms",
            i + 1,
            short,
            if query.chars().count() > 110 { "…" } else { "" },
            plural(statement.calls.max(0) as u64, "call"),
            statement.mean_ms,
            statement.total_ms
        );
        match (&statement.not_planned, statement.cost_before, statement.cost_after) {
            (Some(reason), _, _) => {
                let _ = writeln!(out, "   not planned: {reason}");
            }
            (None, Some(before), Some(after)) if after < before => {
                let _ = writeln!(out, "   estimated cost {before:.0} → {after:.0} with the indexes below");
            }
            (None, Some(before), _) => {
                let _ = writeln!(out, "   estimated cost {before:.0}; no index below changes it");
            }
            _ => {}
        }
    }
    if report.proposals.is_empty() {
        let _ = writeln!(
            out,
            "\nNo index to propose: none of {} candidates cut a statement's estimated cost enough to be worth its writes.",
            report.candidates
        );
    } else {
        let _ = writeln!(
            out,
            "\nProposed indexes ({} of {} candidates), by estimated time saved net of writes:",
            report.proposals.len(),
            report.candidates
        );
    }
    for (i, proposal) in report.proposals.iter().enumerate() {
        let serves: Vec<String> = proposal.serves.iter().map(|s| s.to_string()).collect();
        let _ = writeln!(
            out,
            "\n{}. {}\n   serves statement{} {}; saves about {:.1} ms of statement time ({:.2} ms per second)",
            i + 1,
            proposal.index,
            if serves.len() == 1 { "" } else { "s" },
            serves.join(", "),
            proposal.saved_ms,
            proposal.saved_ms / report.period_s
        );
        let _ = writeln!(
            out,
            "   writers: the table takes {:.1} rows/s and has {}; one more costs them about {:.3} ms per second \
             (+{:.0}% of their index upkeep)",
            proposal.table_writes_per_s,
            match proposal.table_indexes {
                1 => "1 index".to_string(),
                n => format!("{n} indexes"),
            },
            proposal.write_cost_ms_per_s,
            100.0 / proposal.table_indexes.max(1) as f64
        );
        for statement in &proposal.sql {
            let _ = writeln!(out, "   {statement}");
        }
    }
    if !report.proposals.is_empty() {
        let share = if report.total_ms > 0.0 { report.saved_ms / report.total_ms * 100.0 } else { 0.0 };
        let _ = writeln!(
            out,
            "\nTotal: about {:.1} ms saved of {:.1} ms ({share:.0}%), estimated from the planner's costs.",
            report.saved_ms, report.total_ms
        );
    }
    for rejected in &report.rejected_for_writes {
        let _ = writeln!(
            out,
            "\nNot proposed, writes outweigh reads: {} would save {:.3} ms per second and cost writers {:.3} ms per second",
            rejected.index, rejected.saved_ms_per_s, rejected.write_cost_ms_per_s
        );
    }
    for redundant in &report.redundant {
        let _ = writeln!(
            out,
            "\nMade redundant: {} (its keys lead {})\n   {}",
            redundant.index, redundant.by, redundant.sql
        );
    }
    out
}
