//! Human output of `tally explain` and `tally doctor`.

use std::fmt::Write;
use std::time::Duration;

use super::audit::statistics::{duration_text, timestamp};
use super::audit::{AuditFinding, AuditKind, AuditReport, SightingsStatus, WatchedFrom};
use super::finding::Finding;
use super::numbers::count;
use super::verify::Suggestion;
use super::{Node, Report};

/// The report as people read it: a summary line, then each finding with its
/// numbers, problem, fix and SQL.
pub fn render_report(report: &Report) -> String {
    let mut out = String::new();
    let plan = Node::new(&report.plan);
    let timing = match (report.planning_time_ms, report.execution_time_ms) {
        (Some(p), Some(e)) => format!("planning {p:.1} ms, execution {e:.1} ms, rolled back"),
        (Some(p), None) => format!("planning {p:.1} ms, not executed (--no-analyze)"),
        _ => "not executed (--no-analyze)".to_string(),
    };
    let _ = writeln!(out, "Plan: {} ({timing})", summary(&plan));
    if !report.settings.is_empty() {
        let set: Vec<String> = report.settings.iter().map(|(n, v)| format!("{n}={v}")).collect();
        let _ = writeln!(out, "Settings: {}", set.join(", "));
    }
    if report.findings.is_empty() {
        let _ = writeln!(out, "\nNo warning signs found.");
    } else {
        let count = report.findings.len();
        let _ = writeln!(out, "\n{count} warning sign{}:", if count == 1 { "" } else { "s" });
    }
    for (i, finding) in report.findings.iter().enumerate() {
        finding_block(&mut out, i + 1, finding);
    }
    suggestions(&mut out, report);
    out
}

/// The index suggestions: verified ones with their estimated costs, then
/// unverified ones saying why; or, without hypopg, how to get verification.
fn suggestions(out: &mut String, report: &Report) {
    let verification = &report.verification;
    if let Some(note) = &verification.note {
        if report.findings.iter().any(|f| f.sql.iter().any(|s| s.starts_with("CREATE INDEX"))) {
            let _ = writeln!(out, "\nNote: {note}");
        }
        return;
    }
    let (verified, unverified): (Vec<&Suggestion>, Vec<&Suggestion>) =
        report.suggestions.iter().partition(|s| s.verified);
    let cut = format!("{:.0}%", verification.min_cost_cut * 100.0);
    match verified.is_empty() {
        true if verification.candidates == 0 => {}
        true => {
            let _ = writeln!(
                out,
                "\nNo index to suggest: none of {} candidate{} tried with hypopg cut the estimated cost by {cut} or more.",
                verification.candidates,
                if verification.candidates == 1 { "" } else { "s" }
            );
        }
        false => {
            let _ = writeln!(
                out,
                "\nSuggested indexes, verified with hypopg ({} candidates tried; kept: estimated cost cut by {cut} or more), best first:",
                verification.candidates
            );
        }
    }
    for (i, suggestion) in verified.iter().enumerate() {
        let (before, after) = (suggestion.cost_before.unwrap_or(0.0), suggestion.cost_after.unwrap_or(0.0));
        let saved = if before > 0.0 { (1.0 - after / before) * 100.0 } else { 0.0 };
        let _ = writeln!(out, "\n{}. {}", i + 1, suggestion.index);
        let _ = writeln!(out, "   estimated cost: {before:.0} → {after:.0} (−{saved:.0}%)");
        if let (Some(from), Some(to)) = (&suggestion.node_before, &suggestion.node_after) {
            let _ = writeln!(out, "   plan: {from} → {to}");
        }
        for statement in &suggestion.sql {
            let _ = writeln!(out, "   {statement}");
        }
    }
    for suggestion in unverified {
        let _ = writeln!(out, "\nNot verified: {} ({})", suggestion.index, suggestion.note.as_deref().unwrap_or(""));
        for statement in &suggestion.sql {
            let _ = writeln!(out, "   {statement}");
        }
    }
}

/// The audit as people read it: the window index usage was counted over,
/// what was held back, the findings, then the notes on tally's own indexes.
pub fn render_audit(report: &AuditReport) -> String {
    let mut out = format!(
        "Checked {} indexes in {} ({}); index usage counted since {}, {} ago.\n",
        report.indexes_checked,
        if report.schemas.len() == 1 { "1 schema".to_string() } else { format!("{} schemas", report.schemas.len()) },
        report.schemas.join(", "),
        report.statistics.since_text(),
        duration_text(report.statistics.age)
    );
    sightings_problem(&mut out, report);
    if report.unused_held_back {
        held_back(&mut out, report);
    } else {
        watched_too_briefly(&mut out, report);
    }
    let (notes, findings): (Vec<&AuditFinding>, Vec<&AuditFinding>) =
        report.findings.iter().partition(|f| f.kind == AuditKind::TallyIndex);
    if findings.is_empty() {
        let unused = if report.unused_held_back || report.indexes_held_back > 0 { "" } else { "unused, " };
        let _ = writeln!(out, "\nNo {unused}duplicate, redundant or invalid indexes.");
    } else {
        let _ = writeln!(out, "\n{} finding{}:", findings.len(), if findings.len() == 1 { "" } else { "s" });
    }
    for (i, finding) in findings.iter().enumerate() {
        audit_block(&mut out, i + 1, finding);
    }
    if !notes.is_empty() {
        let _ = writeln!(out, "\nNotes on tally's own indexes (informational: nothing to drop):");
        for (i, note) in notes.iter().enumerate() {
            audit_block(&mut out, findings.len() + i + 1, note);
        }
    }
    out
}

/// Says plainly that no index was judged unused, why, and when it will be.
fn held_back(out: &mut String, report: &AuditReport) {
    let threshold = Duration::from_secs(report.min_stats_age_seconds);
    let _ = writeln!(
        out,
        "\nUnused indexes are not judged yet: index usage has been counted for {}, less than --min-stats-age ({}). \
         Indexes with no index scan in that time: {} of yours, which would otherwise be reported unused; {} of \
         tally's own, which are never advised for dropping. Run `tally doctor` again after {}, or pass \
         --min-stats-age 0s to judge them now.",
        duration_text(report.statistics.age),
        duration_text(threshold),
        report.unscanned_indexes,
        report.unscanned_tally_indexes,
        timestamp(report.statistics.old_enough_at(threshold))
    );
}

/// Says which of the user's indexes were not judged because tally has not
/// watched them long enough, each with when it first saw them.
fn watched_too_briefly(out: &mut String, report: &AuditReport) {
    let held: Vec<_> = report.unscanned.iter().filter(|u| u.held_back && !u.tally_index).collect();
    if held.is_empty() {
        return;
    }
    let threshold = Duration::from_secs(report.min_stats_age_seconds);
    let _ = writeln!(
        out,
        "\nNot judged yet: {} of your indexes had no index scan, but tally has watched {} for less than \
         --min-stats-age ({}), too briefly to call {} unused:",
        held.len(),
        if held.len() == 1 { "it" } else { "them" },
        duration_text(threshold),
        if held.len() == 1 { "it" } else { "them" },
    );
    for index in held {
        let line = match (index.watched_from, index.first_seen, index.judged_after) {
            (WatchedFrom::FirstSeen, Some(first_seen), Some(after)) => format!(
                "first seen by tally at {}, watched for {}; judged after {}",
                timestamp(first_seen),
                duration_text(index.watched_seconds),
                timestamp(after)
            ),
            _ => "tally has no record of it, so it is not judged until tally has recorded it and watched it for \
                  --min-stats-age"
                .to_string(),
        };
        let _ = writeln!(out, "  {}: {line}", index.index);
    }
}

/// Says when tally could not record or read which indexes it has seen, and
/// what that means for the verdicts.
fn sightings_problem(out: &mut String, report: &AuditReport) {
    let problem = report.index_sightings_problem.as_deref().unwrap_or("unknown reason");
    let consequence = match report.index_sightings {
        SightingsStatus::Recorded => return,
        SightingsStatus::NotRecorded => format!(
            "\nNote: tally could not record the indexes it sees ({problem}). Indexes it has no record of \
             count as first seen now, so they are not judged unused (unless --min-stats-age is 0s). The worker \
             records them at start-up and on its maintenance schedule, or run `tally doctor` as tally's own role."
        ),
        SightingsStatus::Unreadable => format!(
            "\nNote: tally could not read when it first saw each index ({problem}). Every index counts as first \
             seen now, so none is judged unused (unless --min-stats-age is 0s). Run `tally migrate` if \
             tally.index_sightings is missing, or grant this role SELECT on it (docs/security.md)."
        ),
    };
    let _ = writeln!(out, "{consequence}");
}

fn summary(plan: &Node) -> String {
    let rows = match plan.actual_rows() {
        Some(actual) => format!("estimated {} rows, actual {}", count(plan.plan_rows()), count(actual)),
        None => format!("estimated {} rows", count(plan.plan_rows())),
    };
    format!("{}, {rows}", plan.label())
}

fn finding_block(out: &mut String, number: usize, f: &Finding) {
    heading(out, number, f.kind.as_str(), &f.node);
    let mut numbers = Vec::new();
    if let Some(estimated) = f.estimated_rows {
        numbers.push(match f.actual_rows {
            Some(actual) => format!("rows estimated {} / actual {}", count(estimated), count(actual)),
            None => format!("rows estimated {}", count(estimated)),
        });
    }
    if let Some(loops) = f.loops.filter(|l| *l > 1.0) {
        numbers.push(format!("loops {}", count(loops)));
    }
    if let Some(ms) = f.time_ms {
        numbers.push(format!("time {ms:.1} ms"));
    }
    if let Some(b) = &f.buffers {
        let mut parts = vec![format!("shared hit {}", count(b.shared_hit as f64))];
        if b.shared_read > 0 {
            parts.push(format!("read {}", count(b.shared_read as f64)));
        }
        if b.temp_written > 0 || b.temp_read > 0 {
            parts.push(format!("temp written {} read {}", count(b.temp_written as f64), count(b.temp_read as f64)));
        }
        numbers.push(format!("buffers {}", parts.join(", ")));
    }
    if !numbers.is_empty() {
        let _ = writeln!(out, "   {}", numbers.join("; "));
    }
    advice(out, &f.problem, &f.fix, &f.sql);
}

/// An audit finding: about an index, with no plan numbers.
fn audit_block(out: &mut String, number: usize, f: &AuditFinding) {
    heading(out, number, f.kind.as_str(), &f.index);
    advice(out, &f.problem, &f.fix, &f.sql);
}

/// `1. [seq_scan] Seq Scan on marketing.clicks`, after a blank line.
fn heading(out: &mut String, number: usize, kind: &str, place: &str) {
    let _ = writeln!(out, "\n{number}. [{kind}] {place}");
}

/// The problem, the fix and the statements that apply it.
fn advice(out: &mut String, problem: &str, fix: &str, sql: &[String]) {
    let _ = writeln!(out, "   Problem: {problem}");
    let _ = writeln!(out, "   Fix: {fix}");
    for statement in sql {
        let _ = writeln!(out, "     {statement}");
    }
}
