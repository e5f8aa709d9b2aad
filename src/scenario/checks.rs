//! Field checks shared by every validator (scenario, pharmacokinetics): each returns
//! an error naming the field, what is allowed and what was given.

/// A check's result: the message names the field.
pub type Check = std::result::Result<(), String>;

/// A finite number.
pub fn finite(field: &str, v: f64) -> Check {
    if v.is_finite() {
        Ok(())
    } else {
        Err(format!("{field}: must be a finite number (got {v})"))
    }
}

/// A finite number > 0.
pub fn positive(field: &str, v: f64) -> Check {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(format!("{field}: must be a finite number > 0 (got {v})"))
    }
}

/// A finite number >= 0.
pub fn non_negative(field: &str, v: f64) -> Check {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(format!("{field}: must be a finite number >= 0 (got {v})"))
    }
}

/// A fraction in (0, 1].
pub fn fraction(field: &str, v: f64) -> Check {
    if v.is_finite() && v > 0.0 && v <= 1.0 {
        Ok(())
    } else {
        Err(format!("{field}: must be in (0, 1] (got {v})"))
    }
}
