//! Label and field selectors, parsed and matched the way the API server does
//! (`apimachinery pkg/labels/selector.go`, `pkg/fields/selector.go`).
//! Parse errors keep the server's message shape (`unable to parse
//! requirement: found 'X', expected: …`); the model turns them into 400s.

use std::collections::BTreeSet;

use serde_json::Value;

use super::resource::Resource;

/// A parsed `labelSelector`: every requirement must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
    values: BTreeSet<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Exists,
    DoesNotExist,
    Equals,
    NotEquals,
    In,
    NotIn,
    GreaterThan,
    LessThan,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Identifier(String),
    Not,
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    OpenPar,
    ClosePar,
    Comma,
    Greater,
    Less,
    End,
}

impl Token {
    fn literal(&self) -> String {
        match self {
            Token::Identifier(s) => s.clone(),
            Token::Not => "!".into(),
            Token::Equals => "=".into(),
            Token::DoubleEquals => "==".into(),
            Token::NotEquals => "!=".into(),
            Token::In => "in".into(),
            Token::NotIn => "notin".into(),
            Token::OpenPar => "(".into(),
            Token::ClosePar => ")".into(),
            Token::Comma => ",".into(),
            Token::Greater => ">".into(),
            Token::Less => "<".into(),
            Token::End => String::new(),
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '!' | '=' | ',' | '(' | ')' | '<' | '>')
}

/// Splits a selector into tokens, each read two ways: in operator position
/// (where `in` and `notin` are keywords) and in key or value position (where
/// they are ordinary identifiers).
fn lex(input: &str) -> Vec<(Token, Token)> {
    let mut out = Vec::new();
    let chars: Vec<char> = input.chars().collect();
    let mut i = 0;
    loop {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i == chars.len() {
            out.push((Token::End, Token::End));
            return out;
        }
        let c = chars[i];
        if is_special(c) {
            let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let (token, len) = match two.as_str() {
                "==" => (Token::DoubleEquals, 2),
                "!=" => (Token::NotEquals, 2),
                _ => match c {
                    '!' => (Token::Not, 1),
                    '=' => (Token::Equals, 1),
                    ',' => (Token::Comma, 1),
                    '(' => (Token::OpenPar, 1),
                    ')' => (Token::ClosePar, 1),
                    '>' => (Token::Greater, 1),
                    _ => (Token::Less, 1),
                },
            };
            i += len;
            out.push((token.clone(), token));
            continue;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() && !is_special(chars[i]) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let as_operator = match word.as_str() {
            "in" => Token::In,
            "notin" => Token::NotIn,
            _ => Token::Identifier(word.clone()),
        };
        out.push((as_operator, Token::Identifier(word)));
    }
}

struct Parser {
    tokens: Vec<(Token, Token)>,
    at: usize,
}

impl Parser {
    fn peek_value(&self) -> &Token {
        &self.tokens[self.at.min(self.tokens.len() - 1)].1
    }

    fn next_value(&mut self) -> Token {
        let t = self.peek_value().clone();
        self.at = (self.at + 1).min(self.tokens.len() - 1);
        t
    }

    fn next_operator(&mut self) -> Token {
        let t = self.tokens[self.at.min(self.tokens.len() - 1)].0.clone();
        self.at = (self.at + 1).min(self.tokens.len() - 1);
        t
    }
}

impl LabelSelector {
    /// Parses a `labelSelector`; the empty string selects everything.
    pub fn parse(input: &str) -> Result<Self, String> {
        let mut p = Parser {
            tokens: lex(input),
            at: 0,
        };
        let mut requirements = Vec::new();
        loop {
            match p.peek_value() {
                Token::Identifier(_) | Token::Not => {
                    let r = parse_requirement(&mut p)
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(r);
                    match p.next_value() {
                        Token::End => break,
                        Token::Comma => match p.peek_value() {
                            Token::Identifier(_) | Token::Not => {}
                            t => {
                                return Err(format!(
                                    "found '{}', expected: identifier after ','",
                                    t.literal()
                                ));
                            }
                        },
                        t => {
                            return Err(format!(
                                "found '{}', expected: ',' or 'end of string'",
                                t.literal()
                            ));
                        }
                    }
                }
                Token::End => break,
                t => {
                    return Err(format!(
                        "found '{}', expected: !, identifier, or 'end of string'",
                        t.literal()
                    ));
                }
            }
        }
        Ok(Self { requirements })
    }

    /// Whether this selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether an object with these `metadata.labels` is selected.
    pub fn matches(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        self.requirements.iter().all(|r| {
            let value = labels.and_then(|l| l.get(&r.key)).and_then(Value::as_str);
            match (r.op, value) {
                (Op::Exists, v) => v.is_some(),
                (Op::DoesNotExist, v) => v.is_none(),
                (Op::Equals | Op::In, Some(v)) => r.values.contains(v),
                (Op::Equals | Op::In, None) => false,
                (Op::NotEquals | Op::NotIn, Some(v)) => !r.values.contains(v),
                (Op::NotEquals | Op::NotIn, None) => true,
                (Op::GreaterThan | Op::LessThan, None) => false,
                (op @ (Op::GreaterThan | Op::LessThan), Some(v)) => {
                    let (Ok(have), Some(Ok(want))) = (
                        v.parse::<i64>(),
                        r.values.iter().next().map(|w| w.parse::<i64>()),
                    ) else {
                        return false;
                    };
                    if op == Op::GreaterThan {
                        have > want
                    } else {
                        have < want
                    }
                }
            }
        })
    }
}

fn parse_requirement(p: &mut Parser) -> Result<Requirement, String> {
    let mut op = None;
    let mut token = p.next_value();
    if token == Token::Not {
        op = Some(Op::DoesNotExist);
        token = p.next_value();
    }
    let Token::Identifier(key) = token else {
        return Err(format!("found '{}', expected: identifier", token.literal()));
    };
    validate_key(&key)?;
    if matches!(p.peek_value(), Token::End | Token::Comma) && op.is_none() {
        op = Some(Op::Exists);
    }
    if let Some(op) = op {
        return Ok(Requirement {
            key,
            op,
            values: BTreeSet::new(),
        });
    }
    let op = match p.next_operator() {
        Token::In => Op::In,
        Token::NotIn => Op::NotIn,
        Token::Equals | Token::DoubleEquals => Op::Equals,
        Token::NotEquals => Op::NotEquals,
        Token::Greater => Op::GreaterThan,
        Token::Less => Op::LessThan,
        t => {
            return Err(format!(
                "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                t.literal()
            ));
        }
    };
    let values = match op {
        Op::In | Op::NotIn => parse_set(p)?,
        _ => parse_exact_value(p)?,
    };
    for v in &values {
        validate_value(&key, v)?;
    }
    if matches!(op, Op::GreaterThan | Op::LessThan)
        && values.iter().any(|v| v.parse::<i64>().is_err())
    {
        return Err(format!(
            "values[0]: Invalid value: {:?}: for 'Gt', 'Lt' operators, the value must be an integer",
            values.iter().next().cloned().unwrap_or_default()
        ));
    }
    Ok(Requirement { key, op, values })
}

fn parse_set(p: &mut Parser) -> Result<BTreeSet<String>, String> {
    let open = p.next_value();
    if open != Token::OpenPar {
        return Err(format!("found '{}', expected: '('", open.literal()));
    }
    let mut values = BTreeSet::new();
    match p.peek_value().clone() {
        Token::ClosePar => {
            p.next_value();
            values.insert(String::new());
            return Ok(values);
        }
        Token::Identifier(_) | Token::Comma => {}
        t => {
            return Err(format!(
                "found '{}', expected: ',', ')' or identifier",
                t.literal()
            ));
        }
    }
    let mut expect_value = true;
    loop {
        match p.next_value() {
            Token::Identifier(v) if expect_value => {
                values.insert(v);
                expect_value = false;
            }
            Token::Comma => {
                if expect_value {
                    values.insert(String::new());
                }
                expect_value = true;
            }
            Token::ClosePar => {
                if expect_value {
                    values.insert(String::new());
                }
                return Ok(values);
            }
            t => return Err(format!("found '{}', expected: ',' or ')'", t.literal())),
        }
    }
}

fn parse_exact_value(p: &mut Parser) -> Result<BTreeSet<String>, String> {
    if matches!(p.peek_value(), Token::End | Token::Comma) {
        return Ok(BTreeSet::from([String::new()]));
    }
    match p.next_value() {
        Token::Identifier(v) => Ok(BTreeSet::from([v])),
        t => Err(format!("found '{}', expected: identifier", t.literal())),
    }
}

const NAME_PART_RULE: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', \
and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or \
'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

const LABEL_VALUE_RULE: &str = "a valid label must be an empty string or consist of alphanumeric \
characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. \
'MyValue',  or 'my_value',  or '12345', regex used for validation is \
'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

fn is_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

const QUALIFIED_NAME_RULE: &str = "a qualified name must consist of alphanumeric characters, \
'-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or \
'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') \
with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')";

/// The problems `IsQualifiedName` finds in a label key (none when it is valid).
fn qualified_name_problems(key: &str) -> Vec<String> {
    let parts: Vec<&str> = key.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            let mut problems = Vec::new();
            if prefix.is_empty() {
                problems.push("prefix part must be non-empty".to_owned());
            } else if !prefix.split('.').all(is_dns_label) || prefix.len() > 253 {
                problems.push(format!("prefix part {}", super::validation::SUBDOMAIN_RULE));
            }
            problems.extend(name_part_problems(name));
            return problems;
        }
        _ => return vec![QUALIFIED_NAME_RULE.to_owned()],
    };
    name_part_problems(name)
}

fn name_part_problems(name: &str) -> Vec<String> {
    if name.is_empty() {
        return vec!["name part must be non-empty".to_owned()];
    }
    let mut problems = Vec::new();
    if name.len() > 63 {
        problems.push("name part must be no more than 63 characters".to_owned());
    }
    if !is_name_part_chars(name) {
        problems.push(NAME_PART_RULE.to_owned());
    }
    problems
}

fn is_name_part_chars(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// `ValidateLabels`: the field errors of an object's `metadata.labels`.
pub(super) fn label_errors(labels: &serde_json::Map<String, Value>) -> Vec<super::FieldError> {
    let mut errors = Vec::new();
    for (key, value) in labels {
        for problem in qualified_name_problems(key) {
            errors.push(super::FieldError::invalid("metadata.labels", key, &problem));
        }
        let value = value.as_str().unwrap_or_default();
        if value.len() > 63 {
            errors.push(super::FieldError::invalid(
                "metadata.labels",
                value,
                "must be no more than 63 characters",
            ));
        }
        if !value.is_empty() && !is_name_part_chars(value) {
            errors.push(super::FieldError::invalid(
                "metadata.labels",
                value,
                LABEL_VALUE_RULE,
            ));
        }
    }
    errors
}

fn validate_key(key: &str) -> Result<(), String> {
    let name = key.rsplit_once('/').map_or(
        key,
        |(prefix, name)| {
            if prefix.is_empty() { "" } else { name }
        },
    );
    if is_name_part(name) {
        return Ok(());
    }
    Err(format!("key: Invalid value: {key:?}: {NAME_PART_RULE}"))
}

fn validate_value(key: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || is_name_part(value) {
        return Ok(());
    }
    Err(format!(
        "values[0][{key}]: Invalid value: {value:?}: {LABEL_VALUE_RULE}"
    ))
}

/// A parsed `fieldSelector`: every term must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct FieldTerm {
    label: String,
    path: String,
    equal: bool,
    value: String,
}

impl FieldSelector {
    /// Parses a `fieldSelector` against the fields `resource` supports.
    ///
    /// The error is the whole 400 message: `invalid selector: …` for a term
    /// without an operator, `field label not supported: …` for an unknown field.
    pub fn parse(input: &str, resource: &Resource) -> Result<Self, String> {
        let mut terms = Vec::new();
        for part in split_unescaped(input, ',') {
            if part.is_empty() {
                continue;
            }
            let (label, equal, value) = ["!=", "==", "="]
                .iter()
                .find_map(|op| {
                    find_unescaped(&part, op)
                        .map(|at| (&part[..at], *op != "!=", &part[at + op.len()..]))
                })
                .ok_or_else(|| format!("invalid selector: '{input}'; can't understand '{part}'"))?;
            let label = unescape(label);
            let path = resource
                .field_path(&label)
                .ok_or_else(|| format!("field label not supported: {label}"))?
                .to_owned();
            terms.push(FieldTerm {
                label,
                path,
                equal,
                value: unescape(value),
            });
        }
        Ok(Self { terms })
    }

    /// Whether this selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether `object` is selected.
    pub fn matches(&self, object: &Value) -> bool {
        self.terms.iter().all(|t| {
            let mut v = object;
            for segment in t.path.split('.') {
                v = &v[segment];
            }
            let have = match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (have == t.value) == t.equal
        })
    }

    /// The labels this selector names (for diagnostics).
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().map(|t| t.label.as_str())
    }
}

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if c == sep && !escaped {
            parts.push(std::mem::take(&mut current));
            continue;
        }
        escaped = c == '\\' && !escaped;
        current.push(c);
    }
    parts.push(current);
    parts
}

fn find_unescaped(s: &str, op: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if s.is_char_boundary(i) && s[i..].starts_with(op) {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}
