//! `--set dotted.path=value` overrides, applied to the parsed TOML tree before it is
//! checked, so that an override is validated exactly like the file itself.
//!
//! Path segments name table keys; after a key that holds an array of tables, the next
//! segment selects an element by its `name` (or `population`, for drives) or by its
//! index: `populations.E.size=8000`, `projections.0.p=0.05`, `record.spikes=["E"]`.

use crate::error::{Error, Result};

/// Apply one `path=value` override to a TOML table.
pub fn apply_override(root: &mut toml::Table, expr: &str) -> Result<()> {
    let fail = |message: String| Error::Override {
        expr: expr.to_string(),
        message,
    };
    let (path, raw) = expr
        .split_once('=')
        .ok_or_else(|| fail("expected PATH=VALUE, e.g. populations.E.size=8000".into()))?;
    let path = path.trim();
    let segments: Vec<&str> = path.split('.').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(fail(format!("empty segment in path `{path}`")));
    }
    let value = parse_value(raw.trim());
    let mut table: &mut toml::Table = root;
    let mut i = 0;
    while i + 1 < segments.len() {
        let seg = segments[i];
        let walked = segments[..=i].join(".");
        let entry = table
            .entry(seg.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = match entry {
            toml::Value::Table(t) => t,
            toml::Value::Array(items) => {
                i += 1;
                let selector = segments[i];
                if i + 1 >= segments.len() {
                    return Err(fail(format!(
                        "`{walked}.{selector}` selects a list element: name a field inside it"
                    )));
                }
                select(items, selector).ok_or_else(|| {
                    fail(format!(
                        "`{walked}` has no element named or numbered `{selector}`"
                    ))
                })?
            }
            _ => return Err(fail(format!("`{walked}` is a value, not a table"))),
        };
        i += 1;
    }
    let last = segments[segments.len() - 1];
    table.insert(last.to_string(), value);
    Ok(())
}

fn select<'a>(items: &'a mut [toml::Value], selector: &str) -> Option<&'a mut toml::Table> {
    if let Ok(i) = selector.parse::<usize>() {
        return items.get_mut(i).and_then(|v| v.as_table_mut());
    }
    items.iter_mut().filter_map(|v| v.as_table_mut()).find(|t| {
        ["name", "population"]
            .iter()
            .any(|k| t.get(*k).and_then(|v| v.as_str()) == Some(selector))
    })
}

/// A TOML value (number, bool, array, quoted string...), or else a bare string.
fn parse_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match toml::from_str::<toml::Table>(&doc) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(s: &str) -> toml::Table {
        toml::from_str(s).expect("test toml")
    }

    #[test]
    fn sets_nested_and_array_fields() {
        let mut t = table("dt_ms = 0.1\n[[populations]]\nname = \"E\"\nsize = 10\n[[populations]]\nname = \"I\"\nsize = 5\n");
        apply_override(&mut t, "populations.I.size=7").expect("by name");
        apply_override(&mut t, "populations.0.size=9").expect("by index");
        apply_override(&mut t, "dt_ms=0.05").expect("top level");
        apply_override(&mut t, "record.spikes=[\"E\"]").expect("new table");
        let pops = t["populations"].as_array().expect("array");
        assert_eq!(pops[1]["size"].as_integer(), Some(7));
        assert_eq!(pops[0]["size"].as_integer(), Some(9));
        assert_eq!(t["dt_ms"].as_float(), Some(0.05));
        assert_eq!(t["record"]["spikes"].as_array().map(|a| a.len()), Some(1));
    }

    #[test]
    fn bad_paths_name_the_problem() {
        let mut t = table("[[populations]]\nname = \"E\"\nsize = 10\n");
        let e = apply_override(&mut t, "populations.X.size=1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no element named or numbered `X`"), "{e}");
        let e = apply_override(&mut t, "nosign").unwrap_err().to_string();
        assert!(e.contains("PATH=VALUE"), "{e}");
    }
}
