//! JavaScript's number and JSON semantics, where the JavaScript sample's answers and
//! stored bytes depend on them: `Number(text)` (ECMAScript `StringToNumber`) for
//! CreateAsset's arguments, and `JSON.stringify` (numbers as ECMAScript
//! `Number::toString` writes them) for everything written back.

use serde_json::Value;

/// ECMAScript `Number(text)`: decimal (`" 7 "`, `"2.50"`, `"1e21"`, `"-0"`, `""` is 0),
/// `0x`/`0o`/`0b` integers, `Infinity`; NaN for anything else (`"big"`, `"12abc"`).
pub fn number(text: &str) -> f64 {
    let text = text.trim_matches(is_js_space);
    if text.is_empty() {
        return 0.0;
    }
    if let Some(value) = non_decimal(text) {
        return value;
    }
    match text {
        "Infinity" | "+Infinity" => return f64::INFINITY,
        "-Infinity" => return f64::NEG_INFINITY,
        _ => {}
    }
    if !is_decimal_literal(text) {
        return f64::NAN;
    }
    // Rust's parser rounds correctly, as ECMAScript requires; the grammar was checked
    // above (Rust alone would also take "inf" and "NaN").
    text.parse().unwrap_or(f64::NAN)
}

/// ECMAScript's white space and line terminators (`StrWhiteSpaceChar`).
fn is_js_space(c: char) -> bool {
    (c.is_whitespace() && c != '\u{85}') || c == '\u{feff}'
}

/// `[+-] (digits [. [digits]] | . digits) [(e|E) [+-] digits]`.
fn is_decimal_literal(text: &str) -> bool {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, Some(exponent)),
        None => (unsigned, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            (digits(int) && (frac.is_empty() || digits(frac))) || (int.is_empty() && digits(frac))
        }
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

/// `0x1A`, `0o17`, `0b101` (no sign): the integer rounded to the nearest double.
fn non_decimal(text: &str) -> Option<f64> {
    let bits_per_digit = match text.get(..2)? {
        "0x" | "0X" => 4,
        "0o" | "0O" => 3,
        "0b" | "0B" => 1,
        _ => return None,
    };
    let radix = 1u32 << bits_per_digit;
    let digits = text.get(2..)?;
    if digits.is_empty() {
        return Some(f64::NAN);
    }
    // The integer's bits, most significant first, without leading zeros.
    let mut bits = Vec::with_capacity(digits.len() * bits_per_digit);
    for c in digits.chars() {
        let Some(value) = c.to_digit(radix) else {
            return Some(f64::NAN);
        };
        for shift in (0..bits_per_digit).rev() {
            bits.push((value >> shift) & 1 == 1);
        }
    }
    let bits: Vec<bool> = bits.into_iter().skip_while(|b| !b).collect();
    // 128 bits hold the 53 of a double's mantissa and far more: the rest only matter as a
    // sticky bit, which the lowest of the 128 stands for.
    let (head, tail) = bits.split_at(bits.len().min(128));
    let mut top: u128 = 0;
    for &bit in head {
        top = (top << 1) | u128::from(bit);
    }
    if tail.iter().any(|&b| b) {
        top |= 1;
    }
    let scale = i32::try_from(tail.len()).unwrap_or(i32::MAX);
    // `as` rounds to nearest, ties to even; scaling by a power of two is exact.
    Some(top as f64 * 2f64.powi(scale))
}

/// ECMAScript `Number::toString` of a finite number (JSON.stringify writes `null` for
/// the others): integers below 10^21 without an exponent, `0.000001` down to 10^-6,
/// `1e+21` and `1e-7` beyond, the shortest digits that read back the same, `-0` as `0`.
pub fn number_to_string(x: f64) -> Option<String> {
    if !x.is_finite() {
        return None;
    }
    if x == 0.0 {
        return Some("0".to_owned());
    }
    let sign = if x < 0.0 { "-" } else { "" };
    // `{:e}` writes the shortest round-tripping digits: "1.2345e20", "5e-7".
    let scientific = format!("{:e}", x.abs());
    let (mantissa, exponent) = scientific.split_once('e')?;
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = i32::try_from(digits.len()).ok()?;
    let n = exponent.parse::<i32>().ok()? + 1;
    let zeros = |count: i32| "0".repeat(usize::try_from(count).unwrap_or(0));
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", zeros(n - k))
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(usize::try_from(n).ok()?);
        format!("{int}.{frac}")
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", zeros(-n))
    } else {
        let exp_sign = if n - 1 < 0 { '-' } else { '+' };
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        format!("{first}{rest}e{exp_sign}{}", (n - 1).abs())
    };
    Some(format!("{sign}{body}"))
}

/// `JSON.stringify(Number(text))`-style: a number's JSON text, `null` for NaN and ±∞.
pub fn number_json(x: f64) -> String {
    number_to_string(x).unwrap_or_else(|| "null".to_owned())
}

/// `JSON.stringify` of a value read with `JSON.parse`: objects in the order their keys
/// sort (what the sample stored them in), numbers written as JavaScript writes them.
pub fn stringify(value: &Value) -> String {
    let mut out = String::new();
    write(value, &mut out);
    out
}

fn write(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number_json(n.as_f64().unwrap_or(f64::NAN))),
        Value::String(s) => out.push_str(&Value::String(s.clone()).to_string()),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        Value::Object(fields) => {
            out.push('{');
            for (i, (key, item)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write(item, out);
            }
            out.push('}');
        }
    }
}
