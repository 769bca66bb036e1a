//! LiveCodeBench's output comparison, done in the harness: the untrusted
//! program never sees the expected outputs, so the verdict cannot be forged
//! from inside the sandbox.
//!
//! * Standard-input problems ([`compare_stdout`]): `testing_util.py`'s
//!   `grade_stdio` — both texts are `strip()`ped and split on `"\n"`, every
//!   line `strip()`ped; the line counts must agree; each pair of lines is
//!   equal as strings or as lists of `decimal.Decimal` tokens (`str.split()`).
//!   Whitespace is Python's `str.isspace` set, and a token is parsed as
//!   CPython 3.11's `Decimal(str)` does (underscores ignored, any Unicode
//!   decimal digit, `Inf`/`Infinity`/`NaN`/`sNaN` in any case). A signalling
//!   NaN reached by the comparison raises in Python: [`Compared::Error`].
//! * Call-based problems ([`PyValue::equals`]): `prediction == gt_out` where
//!   `gt_out = json.loads(expected)` ([`parse_expected`], Python's `json`
//!   dialect: big integers exact, `NaN`/`Infinity` accepted, the last of
//!   duplicate keys wins) and the prediction is what the driver serialised
//!   (`driver.py` `_encode`; a top-level tuple already became a list). Python
//!   equality is reproduced for those types: `True == 1 == 1.0`, an integer
//!   equals a float only when the float is that exact integer, `NaN` equals
//!   nothing, a tuple never equals a list, dicts by key and value. A value
//!   the driver could not serialise (an object with its own `__eq__`, a
//!   numpy array, a `Fraction`) equals nothing: that is where forging a
//!   verdict by `__eq__` would start.

/// Result of comparing printed output with the expected output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compared {
    Match,
    Mismatch,
    /// Python would have raised during the comparison (LCB: runtime error).
    Error,
}

/// `str.isspace()` in Python 3.11.
pub fn is_py_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n'
            | '\x0b'
            | '\x0c'
            | '\r'
            | '\x1c'..='\x1f'
            | ' '
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// LCB `get_stripped_lines`.
fn stripped_lines(text: &str) -> Vec<&str> {
    py_strip(text).split('\n').map(py_strip).collect()
}

/// LCB's stdout comparison of `printed` against `expected` (see the module doc).
pub fn compare_stdout(printed: &str, expected: &str) -> Compared {
    let pred = stripped_lines(printed);
    let gold = stripped_lines(expected);
    if pred.len() != gold.len() {
        return Compared::Mismatch;
    }
    for (p, g) in pred.iter().zip(&gold) {
        if p == g {
            continue;
        }
        let (Some(dp), Some(dg)) = (decimal_line(p), decimal_line(g)) else {
            return Compared::Mismatch;
        };
        // Python's list `==`: lengths first, then element by element until
        // the first unequal pair; a signalling NaN compared raises.
        if dp.len() != dg.len() {
            return Compared::Mismatch;
        }
        for (a, b) in dp.iter().zip(&dg) {
            if matches!(a, Dec::SNan) || matches!(b, Dec::SNan) {
                return Compared::Error;
            }
            if a != b || matches!(a, Dec::NaN) {
                return Compared::Mismatch;
            }
        }
    }
    Compared::Match
}

/// A `decimal.Decimal` value reduced for equality: finite numbers as a sign,
/// a coefficient without leading or trailing zeros and an exponent.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Dec {
    Zero,
    Finite {
        negative: bool,
        digits: Vec<u8>,
        exponent: i128,
    },
    Inf {
        negative: bool,
    },
    NaN,
    SNan,
}

/// `libmpdec`'s bounds (64-bit): `MPD_MAX_EMAX` and `MPD_MIN_ETINY`.
const MAX_EMAX: i128 = 999_999_999_999_999_999;
const MIN_ETINY: i128 = -1_999_999_999_999_999_997;

fn decimal_line(line: &str) -> Option<Vec<Dec>> {
    line.split(is_py_space)
        .filter(|t| !t.is_empty())
        .map(parse_decimal)
        .collect()
}

/// Zero code points of the Unicode `Nd` ranges (Python 3.11, Unicode 14).
const ND_ZEROS: [u32; 66] = [
    0x30, 0x660, 0x6f0, 0x7c0, 0x966, 0x9e6, 0xa66, 0xae6, 0xb66, 0xbe6, 0xc66, 0xce6, 0xd66,
    0xde6, 0xe50, 0xed0, 0xf20, 0x1040, 0x1090, 0x17e0, 0x1810, 0x1946, 0x19d0, 0x1a80, 0x1a90,
    0x1b50, 0x1bb0, 0x1c40, 0x1c50, 0xa620, 0xa8d0, 0xa900, 0xa9d0, 0xa9f0, 0xaa50, 0xabf0, 0xff10,
    0x104a0, 0x10d30, 0x11066, 0x110f0, 0x11136, 0x111d0, 0x112f0, 0x11450, 0x114d0, 0x11650,
    0x116c0, 0x11730, 0x118e0, 0x11950, 0x11c50, 0x11d50, 0x11da0, 0x16a60, 0x16ac0, 0x16b50,
    0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0, 0x1e950, 0x1fbf0,
];

fn decimal_digit(c: char) -> Option<u8> {
    let c = c as u32;
    ND_ZEROS
        .iter()
        .find(|&&z| (z..z + 10).contains(&c))
        .map(|&z| (c - z) as u8)
}

/// CPython's `Decimal(token)`: every `_` dropped, Unicode digits mapped to
/// ASCII, then the decimal string syntax. `None` when Python would raise.
fn parse_decimal(token: &str) -> Option<Dec> {
    let mut s = String::with_capacity(token.len());
    for c in token.chars().filter(|&c| c != '_') {
        match decimal_digit(c) {
            Some(d) => s.push(char::from(b'0' + d)),
            None if c.is_ascii() => s.push(c),
            None => return None,
        }
    }
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s.as_str()),
    };
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(Dec::Inf { negative });
    }
    for (prefix, value) in [("snan", Dec::SNan), ("nan", Dec::NaN)] {
        if let Some(payload) = lower.strip_prefix(prefix) {
            return payload.bytes().all(|b| b.is_ascii_digit()).then_some(value);
        }
    }
    let (mantissa, exp_text) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, ""),
    };
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if int_part.len() + frac_part.len() == 0 || !all_digits(int_part) || !all_digits(frac_part) {
        return None;
    }
    let literal_exp: i128 = match exp_text {
        None => 0,
        Some(t) => {
            let (neg, digits) = match t.as_bytes().first() {
                Some(b'-') => (true, &t[1..]),
                Some(b'+') => (false, &t[1..]),
                _ => (false, t),
            };
            if digits.is_empty() || !all_digits(digits) {
                return None;
            }
            let magnitude: i64 = digits.trim_start_matches('0').parse().unwrap_or(0);
            if digits.trim_start_matches('0').len() > 19
                || (digits.trim_start_matches('0').len() == 19
                    && digits.trim_start_matches('0').parse::<i64>().is_err())
            {
                return None;
            }
            if neg {
                -i128::from(magnitude)
            } else {
                i128::from(magnitude)
            }
        }
    };
    let exponent = literal_exp - frac_part.len() as i128;
    let mut digits: Vec<u8> = int_part
        .bytes()
        .chain(frac_part.bytes())
        .map(|b| b - b'0')
        .skip_while(|&d| d == 0)
        .collect();
    let count = digits.len().max(1) as i128;
    if exponent + count - 1 > MAX_EMAX || exponent < MIN_ETINY {
        return None;
    }
    if digits.is_empty() {
        return Some(Dec::Zero);
    }
    let mut exponent = exponent;
    while digits.last() == Some(&0) {
        digits.pop();
        exponent += 1;
    }
    Some(Dec::Finite {
        negative,
        digits,
        exponent,
    })
}

/// A Python value as far as call-based grading needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum PyValue {
    None,
    Bool(bool),
    /// Decimal digits with an optional leading `-`, no leading zeros.
    Int(String),
    Float(f64),
    Str(String),
    List(Vec<PyValue>),
    Tuple(Vec<PyValue>),
    /// Entries in insertion order.
    Dict(Vec<(PyValue, PyValue)>),
    /// Something the driver could not serialise (its type name): equal to nothing.
    Opaque(String),
}

impl PyValue {
    /// Python's `self == other` for these types.
    pub fn equals(&self, other: &PyValue) -> bool {
        use PyValue::*;
        if let (Some(a), Some(b)) = (self.number(), other.number()) {
            return a.equals(&b);
        }
        match (self, other) {
            (None, None) => true,
            (Str(a), Str(b)) => a == b,
            (List(a), List(b)) | (Tuple(a), Tuple(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.equals(y))
            }
            (Dict(a), Dict(b)) => {
                a.len() == b.len()
                    && a.iter().all(|(k, v)| {
                        b.iter()
                            .rev()
                            .find(|(k2, _)| k.equals(k2))
                            .is_some_and(|(_, v2)| v.equals(v2))
                    })
            }
            _ => false,
        }
    }

    fn number(&self) -> Option<Num> {
        match self {
            PyValue::Bool(b) => Some(Num::Int(if *b { "1" } else { "0" }.to_string())),
            PyValue::Int(i) => Some(Num::Int(i.clone())),
            PyValue::Float(f) => Some(Num::Float(*f)),
            _ => None,
        }
    }

    /// A short Python-like rendering for verdict details.
    pub fn repr(&self) -> String {
        let join = |items: &[PyValue]| {
            items
                .iter()
                .map(PyValue::repr)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            PyValue::None => "None".into(),
            PyValue::Bool(b) => if *b { "True" } else { "False" }.into(),
            PyValue::Int(i) => i.clone(),
            PyValue::Float(f) => format!("{f:?}"),
            PyValue::Str(s) => format!("{s:?}"),
            PyValue::List(v) => format!("[{}]", join(v)),
            PyValue::Tuple(v) => format!("({})", join(v)),
            PyValue::Dict(v) => format!(
                "{{{}}}",
                v.iter()
                    .map(|(k, x)| format!("{}: {}", k.repr(), x.repr()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            PyValue::Opaque(t) => format!("<{t}>"),
        }
    }
}

enum Num {
    Int(String),
    Float(f64),
}

impl Num {
    fn equals(&self, other: &Num) -> bool {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => a == b,
            (Num::Float(a), Num::Float(b)) => a == b,
            (Num::Int(i), Num::Float(f)) | (Num::Float(f), Num::Int(i)) => {
                f.is_finite() && f.fract() == 0.0 && normal_int(&format!("{f:.0}")) == *i
            }
        }
    }
}

/// Canonical integer text: no `+`, no leading zeros, `0` unsigned.
fn normal_int(text: &str) -> String {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let digits = digits.trim_start_matches('0');
    match (digits.is_empty(), neg) {
        (true, _) => "0".to_string(),
        (false, true) => format!("-{digits}"),
        (false, false) => digits.to_string(),
    }
}

/// Error from [`parse_expected`]: the position and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON at byte {at}: {what}")]
pub struct JsonError {
    pub at: usize,
    pub what: &'static str,
}

/// Python's `json.loads` into a [`PyValue`].
///
/// # Errors
/// Where Python would raise `JSONDecodeError`.
pub fn parse_expected(text: &str) -> Result<PyValue, JsonError> {
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        i: 0,
        depth: 0,
    };
    p.ws();
    let v = p.value()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err("extra data"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn err(&self, what: &'static str) -> JsonError {
        JsonError { at: self.i, what }
    }

    fn ws(&mut self) {
        while self
            .s
            .get(self.i)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.i += 1;
        }
    }

    fn eat(&mut self, word: &str) -> bool {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Result<PyValue, JsonError> {
        self.depth += 1;
        if self.depth > 10_000 {
            return Err(self.err("nested too deeply"));
        }
        let v = self.value_inner();
        self.depth -= 1;
        v
    }

    fn value_inner(&mut self) -> Result<PyValue, JsonError> {
        match self.s.get(self.i) {
            None => Err(self.err("expecting value")),
            Some(b'"') => self.string().map(PyValue::Str),
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.eat("]") {
                    return Ok(PyValue::List(items));
                }
                loop {
                    self.ws();
                    items.push(self.value()?);
                    self.ws();
                    if self.eat("]") {
                        return Ok(PyValue::List(items));
                    }
                    if !self.eat(",") {
                        return Err(self.err("expecting ',' delimiter"));
                    }
                }
            }
            Some(b'{') => {
                self.i += 1;
                let mut entries: Vec<(PyValue, PyValue)> = Vec::new();
                self.ws();
                if self.eat("}") {
                    return Ok(PyValue::Dict(entries));
                }
                loop {
                    self.ws();
                    if self.s.get(self.i) != Some(&b'"') {
                        return Err(self.err("expecting property name"));
                    }
                    let key = PyValue::Str(self.string()?);
                    self.ws();
                    if !self.eat(":") {
                        return Err(self.err("expecting ':' delimiter"));
                    }
                    self.ws();
                    let value = self.value()?;
                    match entries.iter_mut().find(|(k, _)| *k == key) {
                        Some(slot) => slot.1 = value,
                        None => entries.push((key, value)),
                    }
                    self.ws();
                    if self.eat("}") {
                        return Ok(PyValue::Dict(entries));
                    }
                    if !self.eat(",") {
                        return Err(self.err("expecting ',' delimiter"));
                    }
                }
            }
            Some(_) => {
                for (word, v) in [
                    ("null", PyValue::None),
                    ("true", PyValue::Bool(true)),
                    ("false", PyValue::Bool(false)),
                    ("NaN", PyValue::Float(f64::NAN)),
                    ("Infinity", PyValue::Float(f64::INFINITY)),
                    ("-Infinity", PyValue::Float(f64::NEG_INFINITY)),
                ] {
                    if self.eat(word) {
                        return Ok(v);
                    }
                }
                self.number()
            }
        }
    }

    /// Python's number pattern `(-?(?:0|[1-9]\d*))(\.\d+)?([eE][-+]?\d+)?`.
    fn number(&mut self) -> Result<PyValue, JsonError> {
        let start = self.i;
        let digits = |p: &mut Self| {
            let s = p.i;
            while p.s.get(p.i).is_some_and(u8::is_ascii_digit) {
                p.i += 1;
            }
            p.i - s
        };
        self.eat("-");
        match self.s.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => {
                self.i = start;
                return Err(self.err("expecting value"));
            }
        }
        let int_end = self.i;
        let mut float = false;
        if self.s.get(self.i) == Some(&b'.') {
            let save = self.i;
            self.i += 1;
            if digits(self) == 0 {
                self.i = save;
            } else {
                float = true;
            }
        }
        if matches!(self.s.get(self.i), Some(b'e' | b'E')) {
            let save = self.i;
            self.i += 1;
            if matches!(self.s.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(self) == 0 {
                self.i = save;
            } else {
                float = true;
            }
        }
        let text = &self.text[start..self.i];
        if float {
            // Python's float(): correctly rounded, overflow to inf.
            Ok(PyValue::Float(text.parse().unwrap_or(f64::INFINITY)))
        } else {
            Ok(PyValue::Int(normal_int(&self.text[start..int_end])))
        }
    }

    fn string(&mut self) -> Result<String, JsonError> {
        let start = self.i;
        self.i += 1;
        loop {
            match self.s.get(self.i) {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => break,
                Some(b'\\') => self.i += 2,
                Some(_) => self.i += 1,
            }
        }
        self.i += 1;
        let slice = &self.text[start..self.i.min(self.text.len())];
        // Python's strict mode rejects the same control characters. (A lone
        // surrogate escape, which Python accepts, is rejected here.)
        serde_json::from_str::<String>(slice).map_err(|_| JsonError {
            at: start,
            what: "invalid string",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Option<Dec> {
        parse_decimal(s)
    }

    #[test]
    fn decimal_tokens_parse_as_cpython_does() {
        assert_eq!(dec("1_000"), dec("1000"));
        assert_eq!(dec("_-1"), dec("-1"));
        assert_eq!(dec("１２"), dec("12"));
        assert_eq!(dec("\u{661}.\u{665}"), dec("1.5"));
        assert_eq!(dec("1.0"), dec("1"));
        assert_eq!(dec("-0"), Some(Dec::Zero));
        assert_eq!(dec("In_f"), Some(Dec::Inf { negative: false }));
        assert_eq!(dec("nan12"), Some(Dec::NaN));
        assert!(dec("0.1e999999999999999999").is_some());
        for bad in [
            ".",
            "e5",
            "1e",
            "0x10",
            "+",
            "_",
            "1.5.",
            "Infinit",
            "1e1000000000000000000",
            "10e999999999999999999",
            "1e-1999999999999999998",
            "0e99999999999999999999",
        ] {
            assert_eq!(dec(bad), None, "{bad}");
        }
    }

    #[test]
    fn stdout_comparison_follows_lcb() {
        assert_eq!(compare_stdout("3\n", "3"), Compared::Match);
        assert_eq!(compare_stdout("1 2\n", "1.0  2e0"), Compared::Match);
        assert_eq!(compare_stdout("a\x1c", "a"), Compared::Match);
        assert_eq!(compare_stdout("NaN", "nan"), Compared::Mismatch);
        assert_eq!(compare_stdout("sNaN", "1"), Compared::Error);
        assert_eq!(compare_stdout("2 sNaN", "1 1"), Compared::Mismatch);
    }

    #[test]
    fn python_equality_of_json_values() {
        let e = |s: &str| parse_expected(s).unwrap();
        assert!(PyValue::Bool(true).equals(&e("1")));
        assert!(PyValue::Float(3.0).equals(&e("3")));
        assert!(!PyValue::Float(0.1 + 0.2).equals(&e("0.3")));
        assert!(
            PyValue::Int("123456789012345678901234567890".into())
                .equals(&e("123456789012345678901234567890"))
        );
        assert!(!PyValue::Float(9007199254740992.0).equals(&e("9007199254740993")));
        assert!(!PyValue::Float(f64::NAN).equals(&e("NaN")));
        assert!(!PyValue::Tuple(vec![]).equals(&e("[]")));
        assert!(!PyValue::Opaque("Evil".into()).equals(&e("1")));
        assert_eq!(
            e(r#"{"a": 1, "a": 2}"#),
            PyValue::Dict(vec![(PyValue::Str("a".into()), PyValue::Int("2".into()))])
        );
        assert!(parse_expected("[1,]").is_err());
        assert!(parse_expected("01").is_err());
        assert_eq!(e("-0"), PyValue::Int("0".into()));
        assert_eq!(e("1.5e2"), PyValue::Float(150.0));
    }
}
