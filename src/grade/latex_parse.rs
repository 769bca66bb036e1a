//! Exact evaluation of the LaTeX arithmetic subset that math-verify's
//! parser (latex2sympy2_extended 1.11.0, grammar `PS.g4`) turns into
//! numbers: integers and decimals (with `1,000`-style separators), `X\%`,
//! `+ - * / : ^`, `\cdot`, `\times`, `\div`, `\frac`, `\sqrt{}` and
//! `\sqrt[n]{}` of exact powers, parentheses and braces, degree marks, spacing
//! commands, implicit multiplication with latex2sympy's mixed-number rule
//! (`3\frac12` = 7/2, and so `2 3` = 5), top-level lists as sets, `\text{…}`
//! alone as a symbol, and `lhs = rhs` with a symbolic left-hand side.
//!
//! Anything else (letters, functions, intervals, tuples, matrices,
//! irrational values, numbers beyond `i128`) gives `None`: the caller then
//! compares only the normalised strings, as math-verify does when parsing
//! fails. Each refusal is listed in `docs/grading-math.md`.

use super::latex_value::{Item, Num, Shape, Value};
use super::math::Rational;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(Num),
    Plus,
    Minus,
    Mul,
    Div,
    Caret,
    Degree,
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBrack,
    RBrack,
    LSet,
    RSet,
    Comma,
    Semi,
    Eq,
    Frac,
    Sqrt,
    Boxed,
    Text(String),
    Letter,
    Underscore,
}

/// Commands the lexer skips (`WS`, the spacing rules, `DOLLAR_SIGN`).
const SKIPPED: &[&str] = &[
    "quad",
    "qquad",
    "thinspace",
    "medspace",
    "thickspace",
    "negthinspace",
    "negmedspace",
    "negthickspace",
    "vrule",
    "vcenter",
    "vbox",
    "vskip",
    "vspace",
    "hfil",
];

fn starts(chars: &[char], i: usize, s: &str) -> bool {
    let n = s.chars().count();
    i + n <= chars.len() && chars[i..i + n].iter().copied().eq(s.chars())
}

/// Lexes a number starting at `i`: the maximal run of digits, `.` and `,`.
fn lex_number(chars: &[char], i: usize, out: &mut Vec<Tok>) -> Option<usize> {
    let mut j = i;
    while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == '.' || chars[j] == ',') {
        j += 1;
    }
    // A trailing comma is a separator, not part of the number.
    while j > i && chars[j - 1] == ',' {
        j -= 1;
    }
    let run: String = chars[i..j].iter().collect();
    let decimal = |s: &str| -> Option<Num> {
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        let ok = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if !ok(int) || !ok(frac) || (frac.is_empty() && s.contains('.')) || s.is_empty() {
            return None;
        }
        let mut num: i128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            num = num.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
        }
        let den = 10i128.checked_pow(u32::try_from(frac.len()).ok()?)?;
        Some(Num::atom(Rational::checked_new(num, den)?, s.contains('.')))
    };
    let next = chars.get(j).copied();
    // E notation, subscripts and a glued `e` are other tokens there.
    if matches!(next, Some('E' | 'e' | '_')) {
        return None;
    }
    if !run.contains(',') {
        let num = decimal(&run)?;
        // PERCENT_NUMBER: NUMBER WS_CHAR? ('\%' | '%').
        let mut k = j;
        if k < chars.len() && matches!(chars[k], ' ' | '\t' | '\r' | '\n') {
            k += 1;
        }
        let pct_len = if starts(chars, k, r"\%") {
            Some(2)
        } else if starts(chars, k, "%") {
            Some(1)
        } else {
            None
        };
        if let Some(len) = pct_len {
            let value = num.value.checked_div(Rational::integer(100))?;
            out.push(Tok::Num(Num {
                value,
                raw: num.value,
                float: num.float,
                shape: Shape::Percent,
            }));
            return Some(k + len);
        }
        out.push(Tok::Num(num));
        return Some(j);
    }
    // `1,000` and `12,345.5` are numbers; `0,5` and `01,000` are floats in
    // latex2sympy (not evaluated here); any other comma separates elements.
    let groups: Vec<&str> = run.split(',').collect();
    let (last_int, _) = groups[groups.len() - 1]
        .split_once('.')
        .unwrap_or((groups[groups.len() - 1], ""));
    let thousands = groups[0].len() <= 3
        && !groups[0].starts_with('0')
        && groups[1..groups.len() - 1].iter().all(|g| g.len() == 3)
        && last_int.len() == 3;
    let percent_follows = next == Some('%') || starts(chars, j, r"\%");
    if run.starts_with('0') || percent_follows {
        return None;
    }
    if thousands && groups.iter().all(|g| !g.is_empty()) {
        out.push(Tok::Num(decimal(&run.replace(',', ""))?));
        return Some(j);
    }
    for (n, group) in groups.iter().enumerate() {
        if n > 0 {
            out.push(Tok::Comma);
        }
        if group.contains('.') || group.is_empty() {
            return None;
        }
        out.push(Tok::Num(decimal(group)?));
    }
    Some(j)
}

fn lex(text: &str) -> Option<Vec<Tok>> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let single = match c {
            ' ' | '\t' | '\r' | '\n' => {
                i += 1;
                continue;
            }
            '+' => Some(Tok::Plus),
            '-' | '−' => Some(Tok::Minus),
            '*' | '×' | '⋅' => Some(Tok::Mul),
            '/' | '÷' | ':' => Some(Tok::Div),
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            '{' => Some(Tok::LBrace),
            '}' => Some(Tok::RBrace),
            '[' => Some(Tok::LBrack),
            ']' => Some(Tok::RBrack),
            ',' => Some(Tok::Comma),
            ';' => Some(Tok::Semi),
            '_' => Some(Tok::Underscore),
            '=' if chars.get(i + 1) == Some(&'=') => return None,
            '=' => Some(Tok::Eq),
            c if c.is_ascii_alphabetic() => Some(Tok::Letter),
            _ => None,
        };
        if let Some(tok) = single {
            if tok == Tok::Div && c == ':' && chars.get(i + 1) == Some(&'=') {
                return None;
            }
            out.push(tok);
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            i = lex_number(&chars, i, &mut out)?;
            continue;
        }
        if c == '^' {
            let degree = [
                r"^\circle",
                r"^\circ",
                r"^\degree",
                "^°",
                r"^{\circle}",
                r"^{\circ}",
                r"^{\degree}",
                "^{°}",
            ]
            .into_iter()
            .find(|d| starts(&chars, i, d));
            match degree {
                Some(d) => {
                    out.push(Tok::Degree);
                    i += d.chars().count();
                }
                None => {
                    out.push(Tok::Caret);
                    i += 1;
                }
            }
            continue;
        }
        if c != '\\' {
            return None;
        }
        // A command: `\` and letters, or `\` and one other character.
        let mut j = i + 1;
        while j < chars.len() && chars[j].is_ascii_alphabetic() {
            j += 1;
        }
        if j == i + 1 {
            match chars.get(i + 1) {
                Some(',' | ':' | ';' | '!' | '$') => {}
                Some('{') => out.push(Tok::LSet),
                Some('}') => out.push(Tok::RSet),
                _ => return None,
            }
            i += 2;
            continue;
        }
        let name: String = chars[i + 1..j].iter().collect();
        i = j;
        match name.as_str() {
            n if SKIPPED.contains(&n) => {}
            "frac" | "dfrac" | "tfrac" | "cfrac" => out.push(Tok::Frac),
            "sqrt" => out.push(Tok::Sqrt),
            "boxed" => out.push(Tok::Boxed),
            "cdot" | "times" => out.push(Tok::Mul),
            "div" => out.push(Tok::Div),
            "lbrace" => out.push(Tok::LSet),
            "rbrace" => out.push(Tok::RSet),
            "text" | "mbox" => {
                // ACCENT: the command, one optional WS_CHAR, `{`, the text up
                // to the first `}`.
                if i < chars.len() && matches!(chars[i], ' ' | '\t' | '\r' | '\n') {
                    i += 1;
                }
                if chars.get(i) != Some(&'{') {
                    return None;
                }
                let close = chars[i..].iter().position(|&c| c == '}')? + i;
                let body: String = chars[i + 1..close]
                    .iter()
                    .filter(|&&c| c != ' ' && c != '(' && c != ')')
                    .collect();
                out.push(Tok::Text(body.to_lowercase()));
                i = close + 1;
            }
            _ => return None,
        }
    }
    Some(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn eat(&mut self, tok: &Tok) -> Option<()> {
        (self.peek() == Some(tok)).then(|| self.pos += 1)
    }

    fn expr(&mut self) -> Option<Num> {
        let mut acc = self.mp()?;
        loop {
            let negate = match self.peek() {
                Some(Tok::Plus) => false,
                Some(Tok::Minus) => true,
                _ => return Some(acc),
            };
            self.pos += 1;
            let rhs = self.mp()?;
            let value = if negate { rhs.value.neg()? } else { rhs.value };
            acc = Num::compound(acc.value.add(value)?, acc.float || rhs.float);
        }
    }

    fn mp(&mut self) -> Option<Num> {
        let mut acc = self.unary()?;
        loop {
            let div = match self.peek() {
                Some(Tok::Mul) => false,
                Some(Tok::Div) => true,
                _ => return Some(acc),
            };
            self.pos += 1;
            let rhs = self.unary()?;
            let float = acc.float || rhs.float;
            acc = if !div {
                Num::compound(acc.value.mul(rhs.value)?, float)
            } else if is_integer_atom(&acc) && is_integer_atom(&rhs) {
                Num::atom(acc.value.checked_div(rhs.value)?, false)
            } else {
                Num::compound(acc.value.checked_div(rhs.value)?, float)
            };
        }
    }

    fn unary(&mut self) -> Option<Num> {
        match self.peek() {
            Some(Tok::Plus) => {
                self.pos += 1;
                self.unary()
            }
            Some(Tok::Minus) => {
                self.pos += 1;
                let x = self.unary()?;
                let value = x.value.neg()?;
                Some(if x.shape == Shape::Atom {
                    Num::atom(value, x.float)
                } else {
                    Num::compound(value, x.float)
                })
            }
            _ => {
                let mut list = vec![self.postfix()?];
                while matches!(
                    self.peek(),
                    Some(
                        Tok::Num(_)
                            | Tok::LParen
                            | Tok::LBrace
                            | Tok::LBrack
                            | Tok::Frac
                            | Tok::Sqrt
                            | Tok::Boxed
                    )
                ) {
                    list.push(self.postfix()?);
                }
                // convert_postfix_list: right to left, an integer followed by
                // a positive rational is a mixed number, anything else a
                // product.
                let mut rh = list.pop()?;
                while let Some(res) = list.pop() {
                    let float = res.float || rh.float;
                    rh = if is_integer_atom(&res)
                        && rh.shape == Shape::Atom
                        && !rh.float
                        && rh.value.num > 0
                    {
                        let v = if res.value.num < 0 {
                            res.value.add(rh.value.neg()?)?
                        } else {
                            res.value.add(rh.value)?
                        };
                        Num::atom(v, false)
                    } else {
                        Num::compound(res.value.mul(rh.value)?, float)
                    };
                }
                Some(rh)
            }
        }
    }

    fn postfix(&mut self) -> Option<Num> {
        let e = self.exp()?;
        while self.eat(&Tok::Degree).is_some() {}
        Some(e)
    }

    fn exp(&mut self) -> Option<Num> {
        let mut base = self.comp()?;
        while self.eat(&Tok::Caret).is_some() {
            let exponent = match self.peek() {
                Some(Tok::LBrace) => self.braced()?,
                Some(Tok::Num(n)) if n.shape == Shape::Atom => {
                    let n = *n;
                    self.pos += 1;
                    n
                }
                _ => return None,
            };
            base = power(base, exponent)?;
        }
        Some(base)
    }

    fn braced(&mut self) -> Option<Num> {
        self.eat(&Tok::LBrace)?;
        let e = self.expr()?;
        self.eat(&Tok::RBrace)?;
        Some(e)
    }

    fn comp(&mut self) -> Option<Num> {
        let tok = self.peek()?.clone();
        self.pos += 1;
        match tok {
            Tok::Num(n) => Some(n),
            Tok::LParen | Tok::LBrace | Tok::LBrack => {
                let e = self.expr()?;
                let close = match tok {
                    Tok::LParen => Tok::RParen,
                    Tok::LBrace => Tok::RBrace,
                    _ => Tok::RBrack,
                };
                self.eat(&close)?;
                Some(e)
            }
            Tok::Boxed => self.braced(),
            Tok::Frac => {
                let top = self.braced()?;
                let bottom = self.braced()?;
                let value = top.value.checked_div(bottom.value)?;
                Some(if is_integer_atom(&top) && is_integer_atom(&bottom) {
                    Num::atom(value, false)
                } else {
                    Num::compound(value, top.float || bottom.float)
                })
            }
            Tok::Sqrt => {
                let index = if self.eat(&Tok::LBrack).is_some() {
                    let n = self.expr()?;
                    self.eat(&Tok::RBrack)?;
                    Some(n)
                } else {
                    None
                };
                let radicand = self.braced()?;
                let inverse = match index {
                    None => Rational::checked_new(1, 2)?,
                    Some(n) if !n.float => Rational::integer(1).checked_div(n.value)?,
                    Some(_) => return None,
                };
                power(radicand, Num::atom(inverse, false))
            }
            _ => None,
        }
    }
}

fn is_integer_atom(n: &Num) -> bool {
    n.shape == Shape::Atom && !n.float && n.value.den == 1
}

/// `Pow(base, exponent)` evaluated exactly: integer exponents, or rational
/// ones on exact powers of a non-negative base; float exponents are refused.
fn power(base: Num, exponent: Num) -> Option<Num> {
    if exponent.float || exponent.shape == Shape::Percent {
        return None;
    }
    let Rational { num: p, den: q } = exponent.value;
    let rooted = if q == 1 {
        base.value
    } else {
        if base.float {
            return None;
        }
        base.value.root(u32::try_from(q).ok()?)?
    };
    Some(Num::compound(rooted.powi(p)?, base.float))
}

/// An element of a set: an expression, or a `\text{…}` alone.
fn item(toks: &[Tok]) -> Option<Item> {
    if let [Tok::Text(name)] = toks {
        return Some(Item::Symbol(name.clone()));
    }
    if toks.iter().any(|t| {
        matches!(
            t,
            Tok::Text(_) | Tok::Letter | Tok::Underscore | Tok::LSet | Tok::RSet
        )
    }) {
        return None;
    }
    let mut p = Parser {
        toks: toks.to_vec(),
        pos: 0,
    };
    let n = p.expr()?;
    (p.pos == toks.len()).then_some(Item::Num(n))
}

/// Splits at depth-0 separators (`,`/`;` for lists, `=` for relations).
fn split_top(toks: &[Tok], is_sep: impl Fn(&Tok) -> bool) -> Option<Vec<&[Tok]>> {
    let mut parts = Vec::new();
    let mut depth = 0i64;
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::LParen | Tok::LBrace | Tok::LBrack | Tok::LSet => depth += 1,
            Tok::RParen | Tok::RBrace | Tok::RBrack | Tok::RSet => depth -= 1,
            t if depth == 0 && is_sep(t) => {
                parts.push(&toks[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if depth < 0 {
            return None;
        }
    }
    parts.push(&toks[start..]);
    Some(parts)
}

fn set_or_item(toks: &[Tok]) -> Option<Value> {
    let parts = split_top(toks, |t| matches!(t, Tok::Comma | Tok::Semi))?;
    if parts.len() > 1 {
        let items = parts.into_iter().map(item).collect::<Option<Vec<_>>>()?;
        return Some(Value::Set(dedup(items)));
    }
    if let [Tok::LSet, inner @ .., Tok::RSet] = toks
        && split_top(inner, |_| false).is_some()
    {
        let items = split_top(inner, |t| matches!(t, Tok::Comma | Tok::Semi))?
            .into_iter()
            .map(item)
            .collect::<Option<Vec<_>>>()?;
        return Some(Value::Set(dedup(items)));
    }
    item(toks).map(Value::Item)
}

/// `FiniteSet` keeps one copy of structurally equal elements.
fn dedup(items: Vec<Item>) -> Vec<Item> {
    let mut out: Vec<Item> = Vec::with_capacity(items.len());
    for it in items {
        if !out.contains(&it) {
            out.push(it);
        }
    }
    out
}

/// A relation's left-hand side that latex2sympy reads as a symbolic
/// expression: letters, digits and simple operators, with a letter.
fn symbolic_side(toks: &[Tok]) -> bool {
    !toks.is_empty()
        && toks.contains(&Tok::Letter)
        && toks.iter().all(|t| {
            matches!(
                t,
                Tok::Letter
                    | Tok::Num(_)
                    | Tok::Plus
                    | Tok::Minus
                    | Tok::Mul
                    | Tok::Caret
                    | Tok::Underscore
                    | Tok::LParen
                    | Tok::RParen
                    | Tok::LBrace
                    | Tok::RBrace
            )
        })
}

/// Parses normalised LaTeX into a [`Value`], or `None` outside the subset.
pub fn parse_value(latex: &str) -> Option<Value> {
    let toks = lex(latex)?;
    if toks.is_empty() {
        return None;
    }
    let parts = split_top(&toks, |t| *t == Tok::Eq)?;
    if parts.len() > 1 {
        let (rhs, lhs) = parts.split_last()?;
        if !lhs.iter().all(|side| symbolic_side(side))
            || toks.iter().any(|t| matches!(t, Tok::Comma | Tok::Semi))
        {
            return None;
        }
        return item(rhs).map(|i| Value::Equation(Box::new(Value::Item(i))));
    }
    set_or_item(&toks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(s: &str) -> Option<(i128, i128, bool, Shape)> {
        match parse_value(s)? {
            Value::Item(Item::Num(n)) => Some((n.value.num, n.value.den, n.float, n.shape)),
            _ => None,
        }
    }

    #[test]
    fn arithmetic_is_exact() {
        assert_eq!(num("2^5"), Some((32, 1, false, Shape::Compound)));
        assert_eq!(num(r"3\cdot 25"), Some((75, 1, false, Shape::Compound)));
        assert_eq!(num(r"\frac{146}{2}"), Some((73, 1, false, Shape::Atom)));
        assert_eq!(num("2^2^2"), Some((16, 1, false, Shape::Compound)));
        assert_eq!(num("2^{-3}"), Some((1, 8, false, Shape::Compound)));
        assert_eq!(num(r"\sqrt{9}"), Some((3, 1, false, Shape::Compound)));
        assert_eq!(num(r"\sqrt[3]{27}"), Some((3, 1, false, Shape::Compound)));
        assert_eq!(num("6:4"), Some((3, 2, false, Shape::Atom)));
        assert_eq!(num("73.00"), Some((73, 1, true, Shape::Atom)));
        assert_eq!(num("1,000"), Some((1000, 1, false, Shape::Atom)));
        assert_eq!(num(r"73 \%"), Some((73, 100, false, Shape::Percent)));
        assert_eq!(num(r"30^{\circ}"), Some((30, 1, false, Shape::Atom)));
        assert_eq!(num(r"2 \quad 3"), Some((5, 1, false, Shape::Atom)));
    }

    #[test]
    fn mixed_numbers_follow_latex2sympy() {
        assert_eq!(num(r"918\frac{1}{2}"), Some((1837, 2, false, Shape::Atom)));
        assert_eq!(num(r"-2\frac{1}{2}"), Some((-5, 2, false, Shape::Atom)));
        assert_eq!(num(r"(-2)\frac{1}{2}"), Some((-5, 2, false, Shape::Atom)));
        assert_eq!(num("(2)3"), Some((5, 1, false, Shape::Atom)));
        assert_eq!(num(r"\frac{1}{2}3"), Some((3, 2, false, Shape::Compound)));
        assert_eq!(num("2.5 3"), Some((15, 2, true, Shape::Compound)));
    }

    #[test]
    fn outside_the_subset_is_none() {
        for s in [
            "x",
            r"\pi",
            r"\sqrt{2}",
            "2^{0.5}",
            "1e3",
            "1E3",
            "5!",
            "(1,2)",
            "[1,2]",
            r"\frac{3}{0}",
            "0^{-1}",
            "10^{100}",
            "01,000",
            "5-",
            "",
            r"\text{a}+1",
            "x<5",
            "1.5.2",
        ] {
            assert_eq!(parse_value(s), None, "{s}");
        }
    }

    #[test]
    fn sets_symbols_and_equations() {
        assert!(matches!(parse_value("2,1"), Some(Value::Set(v)) if v.len() == 2));
        assert!(matches!(parse_value(r"\{1,2\}"), Some(Value::Set(v)) if v.len() == 2));
        assert!(matches!(parse_value("1,2,2"), Some(Value::Set(v)) if v.len() == 2));
        assert_eq!(
            parse_value(r"\text{ 7 3 }"),
            Some(Value::Item(Item::Symbol("73".into())))
        );
        assert!(matches!(parse_value("n = 73"), Some(Value::Equation(_))));
        assert!(matches!(parse_value("a=b=5"), Some(Value::Equation(_))));
        assert_eq!(parse_value("2+3=5"), None);
    }
}
