//! How the doctor writes numbers for people, in findings and reports:
//! counts with thousands separators, shares as percentages.

/// A count for people: 49,970; 1.5 for fractions.
pub fn count(n: f64) -> String {
    if n.fract() != 0.0 && n < 100.0 {
        return format!("{n:.1}");
    }
    let digits = format!("{}", n.round() as i64);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 && c != '-' && !out.ends_with('-') {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `part` as a share of `whole`: 0.25% below one percent, 12% above.
pub fn percent(part: f64, whole: f64) -> String {
    if whole <= 0.0 {
        return "0%".to_string();
    }
    let p = part / whole * 100.0;
    if p < 1.0 { format!("{p:.2}%") } else { format!("{p:.0}%") }
}
