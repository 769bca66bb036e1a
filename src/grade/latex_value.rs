//! The values math-verify's comparison sees, for the part of its input this
//! grader evaluates exactly (numbers, `\text{…}` symbols, finite sets), and
//! `verify`'s equality rules over them (math_verify/grader.py
//! `sympy_expr_eq` → `sympy_numeric_eq` / `sympy_compare_sets` /
//! `sympy_compare_symbols`).
//!
//! SymPy distinguishes *how* a number was written, and math-verify's rules
//! depend on it, so a [`Num`] carries its exact value together with the
//! SymPy type it would have: an atomic `Integer`/`Rational`/`Float` (a
//! literal, a fraction of two integers, a negated number), a percentage
//! (`X%` is `X·UnevaluatedExpr(1/100)`), or a compound expression (`2^5`,
//! `3\cdot 25`). Float arithmetic is modelled as exact decimal arithmetic.

use super::math::Rational;

/// SymPy's type of a number once evaluated (`doit()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Integer,
    Rational,
    Float,
}

/// How the number appears in the expression tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A SymPy `Number` atom.
    Atom,
    /// `X\%`: `Mul(X, UnevaluatedExpr(1/100))` with `X` an atom.
    Percent,
    /// Anything built with unevaluated `Add`/`Mul`/`Pow`.
    Compound,
}

/// A number as latex2sympy builds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Num {
    /// The value after `doit()` (a percentage divided by 100).
    pub value: Rational,
    /// For [`Shape::Percent`], the number before the `%`; else `value`.
    pub raw: Rational,
    /// Whether a float took part (SymPy: the result is a `Float`).
    pub float: bool,
    pub shape: Shape,
}

impl Num {
    pub fn atom(value: Rational, float: bool) -> Self {
        Self {
            value,
            raw: value,
            float,
            shape: Shape::Atom,
        }
    }

    pub fn compound(value: Rational, float: bool) -> Self {
        Self {
            value,
            raw: value,
            float,
            shape: Shape::Compound,
        }
    }

    /// The SymPy type of the evaluated number.
    pub fn kind(&self) -> Kind {
        if self.float {
            Kind::Float
        } else if self.value.den == 1 {
            Kind::Integer
        } else {
            Kind::Rational
        }
    }

    /// `is_atomic_or_pct_atomic(x, T)` for the raw number's type.
    fn atomic_of(&self, kind: Kind) -> bool {
        let raw_kind = if self.float {
            Kind::Float
        } else if self.raw.den == 1 {
            Kind::Integer
        } else {
            Kind::Rational
        };
        self.shape != Shape::Compound && raw_kind == kind
    }

    /// SymPy's `str()` of an atomic integer or rational (`73`, `-3/2`).
    fn sympy_str(&self) -> Option<String> {
        (self.shape == Shape::Atom && !self.float).then(|| self.value.to_string())
    }
}

/// One element: a number or a symbol (`\text{…}` content, lower-cased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Num(Num),
    Symbol(String),
}

/// What `parse` returned, within the supported subset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Item(Item),
    /// A top-level comma/semicolon list or `\{…\}`: a SymPy `FiniteSet`.
    Set(Vec<Item>),
    /// `lhs = … = rhs`: math-verify compares a non-equation gold with the
    /// right-hand side of the last relation.
    Equation(Box<Value>),
}

impl Rational {
    pub(crate) fn checked_new(num: i128, den: i128) -> Option<Self> {
        if den == 0 {
            return None;
        }
        let (mut a, mut b) = (num.unsigned_abs(), den.unsigned_abs());
        while b != 0 {
            (a, b) = (b, a % b);
        }
        let g = i128::try_from(a.max(1)).ok()?;
        let sign = if den < 0 { -1 } else { 1 };
        Some(Self {
            num: sign * (num / g),
            den: sign * (den / g),
        })
    }

    pub(crate) fn integer(n: i128) -> Self {
        Self { num: n, den: 1 }
    }

    pub(crate) fn add(self, o: Self) -> Option<Self> {
        let num = self
            .num
            .checked_mul(o.den)?
            .checked_add(o.num.checked_mul(self.den)?)?;
        Self::checked_new(num, self.den.checked_mul(o.den)?)
    }

    pub(crate) fn neg(self) -> Option<Self> {
        Some(Self {
            num: self.num.checked_neg()?,
            den: self.den,
        })
    }

    pub(crate) fn mul(self, o: Self) -> Option<Self> {
        Self::checked_new(self.num.checked_mul(o.num)?, self.den.checked_mul(o.den)?)
    }

    pub(crate) fn checked_div(self, o: Self) -> Option<Self> {
        Self::checked_new(self.num.checked_mul(o.den)?, self.den.checked_mul(o.num)?)
    }

    /// `self^e` for an integer `e` (`0^-n` is `None`: SymPy's `zoo`).
    pub(crate) fn powi(self, e: i128) -> Option<Self> {
        let base = if e < 0 {
            Self::integer(1).checked_div(self)?
        } else {
            self
        };
        let e = u32::try_from(e.unsigned_abs()).ok()?;
        Self::checked_new(base.num.checked_pow(e)?, base.den.checked_pow(e)?)
    }

    /// The exact non-negative `n`-th root, when there is one.
    pub(crate) fn root(self, n: u32) -> Option<Self> {
        if n == 0 || self.num < 0 {
            return None;
        }
        Some(Self {
            num: iroot(self.num, n)?,
            den: iroot(self.den, n)?,
        })
    }

    /// Rounded half-to-even to `places` decimals, as `value·10^places`.
    fn round_scaled(self, places: u32) -> Option<i128> {
        let scaled = self.mul(Self::integer(10i128.checked_pow(places)?))?;
        let (q, r) = (
            scaled.num.div_euclid(scaled.den),
            scaled.num.rem_euclid(scaled.den),
        );
        let twice = r.checked_mul(2)?;
        Some(match twice.cmp(&scaled.den) {
            std::cmp::Ordering::Less => q,
            std::cmp::Ordering::Greater => q + 1,
            std::cmp::Ordering::Equal => q + (q & 1),
        })
    }
}

/// The exact integer `n`-th root of `x ≥ 0`, if `x` is a perfect power.
fn iroot(x: i128, n: u32) -> Option<i128> {
    let approx = (x as f64).powf(1.0 / f64::from(n)).round() as i128;
    (approx.saturating_sub(1)..=approx.saturating_add(1))
        .find(|r| *r >= 0 && r.checked_pow(n) == Some(x))
}

/// `sympy_numeric_eq` followed by `sympy_symbolic_eq` for two numbers.
///
/// * equal values are equal (SymPy: `simplify(a - b) == 0`), whatever the
///   types (`3.0` = `3`);
/// * two atomic integers, either possibly a percentage, compare the numbers
///   before the `%` (`73\%` = `73`);
/// * when either side is an atomic float, both are rounded to 6 decimals
///   unless one evaluates to an `Integer` (SymPy's `Integer.round` stays an
///   `Integer`, which never equals a `Float`): `0.333333` = `\frac13`, but
///   `1.0000004` ≠ `1`.
pub fn num_eq(g: &Num, p: &Num) -> bool {
    if g.value == p.value {
        return true;
    }
    if g.atomic_of(Kind::Integer) && p.atomic_of(Kind::Integer) {
        return g.raw == p.raw;
    }
    if (g.atomic_of(Kind::Float) || p.atomic_of(Kind::Float))
        && g.kind() != Kind::Integer
        && p.kind() != Kind::Integer
    {
        return match (g.value.round_scaled(6), p.value.round_scaled(6)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        };
    }
    false
}

/// `sympy_compare_symbols` for the cases that reach it here.
fn item_eq(g: &Item, p: &Item) -> bool {
    match (g, p) {
        (Item::Num(a), Item::Num(b)) => num_eq(a, b),
        (Item::Symbol(a), Item::Symbol(b)) => {
            let fold = |s: &str| {
                if s.chars().count() > 1 {
                    s.to_lowercase()
                } else {
                    s.to_string()
                }
            };
            fold(a) == fold(b)
        }
        (Item::Symbol(s), Item::Num(n)) | (Item::Num(n), Item::Symbol(s)) => {
            n.sympy_str().as_deref() == Some(s.as_str())
        }
    }
}

fn sort_key(item: &Item) -> (u8, Rational, String) {
    match item {
        Item::Num(n) => (0, n.value, String::new()),
        Item::Symbol(s) => (1, Rational::integer(0), s.clone()),
    }
}

fn cmp_rational(a: &Rational, b: &Rational) -> std::cmp::Ordering {
    // Cross-multiplication in f64 is enough to order distinct values that
    // the checked arithmetic let through; ties fall back to exact equality.
    if a == b {
        return std::cmp::Ordering::Equal;
    }
    let fa = a.num as f64 / a.den as f64;
    let fb = b.num as f64 / b.den as f64;
    fa.partial_cmp(&fb).unwrap_or(std::cmp::Ordering::Equal)
}

/// `sympy_compare_sets`: a lone element is a one-element set; sets with the
/// same elements are equal; otherwise sets of equal size are sorted by value
/// and compared element by element.
fn set_eq(g: &[Item], p: &[Item]) -> bool {
    let same_elements = g.iter().all(|a| p.contains(a)) && p.iter().all(|b| g.contains(b));
    if same_elements {
        return true;
    }
    if g.len() != p.len() {
        return false;
    }
    let sorted = |items: &[Item]| {
        let mut v = items.to_vec();
        v.sort_by(|a, b| {
            let (ka, kb) = (sort_key(a), sort_key(b));
            ka.0.cmp(&kb.0)
                .then(cmp_rational(&ka.1, &kb.1))
                .then(ka.2.cmp(&kb.2))
        });
        v
    };
    sorted(g)
        .iter()
        .zip(sorted(p).iter())
        .all(|(a, b)| item_eq(a, b))
}

/// `sympy_expr_eq(gold, pred)` over the supported values.
pub fn value_eq(gold: &Value, pred: &Value) -> bool {
    match (gold, pred) {
        // Both relations: not evaluated here (see docs/grading-math.md).
        (Value::Equation(_), _) => false,
        (_, Value::Equation(rhs)) => value_eq(gold, rhs),
        (Value::Item(a), Value::Item(b)) => item_eq(a, b),
        (Value::Set(a), Value::Set(b)) => set_eq(a, b),
        (Value::Set(a), Value::Item(b)) => set_eq(a, std::slice::from_ref(b)),
        (Value::Item(a), Value::Set(b)) => set_eq(std::slice::from_ref(a), b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: i128, d: i128) -> Rational {
        Rational::checked_new(n, d).unwrap()
    }

    #[test]
    fn rounding_is_half_even_on_the_exact_value() {
        assert_eq!(q(1, 3).round_scaled(6), Some(333_333));
        assert_eq!(q(1_250_005, 10_000_000).round_scaled(6), Some(125_000));
        assert_eq!(q(1_250_015, 10_000_000).round_scaled(6), Some(125_002));
        assert_eq!(q(-1, 2).round_scaled(0), Some(0));
    }

    #[test]
    fn numbers_follow_sympy_numeric_eq() {
        let int = |n| Num::atom(q(n, 1), false);
        let float = |n, d| Num::atom(q(n, d), true);
        assert!(num_eq(&int(3), &float(3, 1)));
        assert!(!num_eq(&int(1), &float(10_000_004, 10_000_000)));
        assert!(num_eq(
            &Num::atom(q(1, 3), false),
            &float(333_333, 1_000_000)
        ));
        let pct = Num {
            value: q(73, 100),
            raw: q(73, 1),
            float: false,
            shape: Shape::Percent,
        };
        assert!(num_eq(&int(73), &pct));
        assert!(!num_eq(&Num::compound(q(32, 1), false), &int(33)));
    }

    #[test]
    fn roots_and_powers_are_exact() {
        assert_eq!(q(9, 4).root(2), Some(q(3, 2)));
        assert_eq!(q(2, 1).root(2), None);
        assert_eq!(q(2, 1).powi(-3), Some(q(1, 8)));
        assert_eq!(q(0, 1).powi(-1), None);
        assert_eq!(q(10, 1).powi(100), None);
    }
}
