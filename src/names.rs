//! The naming rules of series, shared by whoever accepts a name (the ingest
//! API, the configuration's rules, the store): Prometheus's, so names move
//! between the two unchanged.

/// At most this many labels on one series (keeps canonical keys small).
pub const MAX_LABELS: usize = 16;
/// Longest metric name, label name or label value, in bytes.
pub const MAX_NAME_LEN: usize = 200;

/// A metric name matches `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn check_metric(name: &str) -> Result<(), String> {
    if valid(name, true) {
        Ok(())
    } else {
        Err(format!(
            "invalid metric name '{name}': use letters, digits, '_' and ':', not starting with a digit"
        ))
    }
}

/// A label name matches `[a-zA-Z_][a-zA-Z0-9_]*`; its value is at most
/// `MAX_NAME_LEN` bytes.
pub fn check_label(name: &str, value: &str) -> Result<(), String> {
    if !valid(name, false) {
        return Err(format!("invalid label name '{name}'"));
    }
    if value.len() > MAX_NAME_LEN {
        return Err(format!(
            "label '{name}' value longer than {MAX_NAME_LEN} bytes"
        ));
    }
    Ok(())
}

/// `name=value,name=value` (blanks dropped, a value may be quoted), each
/// pair checked as a label.
pub fn label_pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (n, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("'{pair}' is not name=value"))?;
        let (n, v) = (n.trim(), v.trim().trim_matches('"'));
        check_label(n, v)?;
        out.push((n.to_string(), v.to_string()));
    }
    Ok(out)
}

fn valid(s: &str, allow_colon: bool) -> bool {
    let ok = |c: char, first: bool| {
        c.is_ascii_alphabetic()
            || c == '_'
            || (allow_colon && c == ':')
            || (!first && c.is_ascii_digit())
    };
    !s.is_empty() && s.len() <= MAX_NAME_LEN && s.chars().enumerate().all(|(i, c)| ok(c, i == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_rules() {
        assert!(check_metric("http_requests_total").is_ok());
        assert!(check_metric("job:rate5m").is_ok());
        assert!(check_metric("9lives").is_err());
        assert!(check_metric("").is_err());
        assert!(check_metric(&"a".repeat(MAX_NAME_LEN + 1)).is_err());
        assert!(check_label("service", "api").is_ok());
        assert!(check_label("a:b", "x").is_err());
        assert!(check_label("service", &"v".repeat(MAX_NAME_LEN + 1)).is_err());
    }
}
