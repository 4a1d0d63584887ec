//! `-o jsonpath=TEMPLATE`: kubectl's JSONPath templates (client-go's
//! `util/jsonpath`), evaluated on the JSON kubectl would print (the object,
//! or a `List` with `items`).
//!
//! A template is text with actions in braces: `{.items[*].metadata.name}`,
//! `{range .items[*]}{.metadata.name}{"\t"}{.status.podIP}{"\n"}{end}`.
//! Paths: `.field` (dots in a key escaped `\.`), `['field']`, `[n]` (from
//! the end when negative), `[a:b]`, `[*]` / `.*`, `..field` (at any depth),
//! `[?(@.path OP literal)]` with `== != < <= > >=` or just `[?(@.path)]`,
//! and `[a,b]` unions. Like `kubectl get`, a missing key prints nothing
//! (kubectl sets `AllowMissingKeys`); strings print bare, other values as
//! JSON; several results of one action are joined by spaces.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Path(Vec<Step>),
    Range(Vec<Step>, Vec<Node>),
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Recursive(String),
    Wildcard,
    Index(i64),
    Slice(Option<i64>, Option<i64>),
    Union(Vec<Step>),
    Filter(Filter),
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    path: Vec<Step>,
    cmp: Option<(Op, Value)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template(Vec<Node>);

impl Template {
    /// Parses `text`; the error names the position and what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut p = Parser { s: text, at: 0 };
        let nodes = p.nodes(false)?;
        Ok(Self(nodes))
    }

    /// The template applied to `data`.
    pub fn render(&self, data: &Value) -> Result<String, String> {
        let mut out = String::new();
        render(&self.0, data, &mut out)?;
        Ok(out)
    }
}

fn render(nodes: &[Node], data: &Value, out: &mut String) -> Result<(), String> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Path(steps) => {
                let found = eval(steps, data);
                let texts: Vec<String> = found.into_iter().map(text).collect();
                out.push_str(&texts.join(" "));
            }
            Node::Range(steps, body) => {
                for v in eval(steps, data) {
                    render(body, v, out)?;
                }
            }
        }
    }
    Ok(())
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Every value `steps` reach from `data` (a path that starts at `$` or `@`
/// is the same here: actions are evaluated against the current item).
fn eval<'a>(steps: &[Step], data: &'a Value) -> Vec<&'a Value> {
    let mut cur = vec![data];
    for step in steps {
        let mut next = Vec::new();
        for v in cur {
            apply(step, v, &mut next);
        }
        cur = next;
    }
    cur
}

fn apply<'a>(step: &Step, v: &'a Value, next: &mut Vec<&'a Value>) {
    match step {
        Step::Field(name) => {
            if let Some(x) = v.as_object().and_then(|m| m.get(name)) {
                next.push(x);
            }
        }
        Step::Recursive(name) => descend(name, v, next),
        Step::Wildcard => match v {
            Value::Array(a) => next.extend(a.iter()),
            Value::Object(m) => next.extend(m.values()),
            _ => {}
        },
        Step::Index(i) => {
            if let Some(a) = v.as_array() {
                let i = if *i < 0 { a.len() as i64 + i } else { *i };
                if let Some(x) = usize::try_from(i).ok().and_then(|i| a.get(i)) {
                    next.push(x);
                }
            }
        }
        Step::Slice(start, end) => {
            if let Some(a) = v.as_array() {
                let len = a.len() as i64;
                let clamp = |x: i64| (if x < 0 { len + x } else { x }).clamp(0, len) as usize;
                let s = start.map_or(0, clamp);
                let e = end.map_or(a.len(), clamp);
                if s < e {
                    next.extend(a[s..e].iter());
                }
            }
        }
        Step::Union(parts) => {
            for p in parts {
                apply(p, v, next);
            }
        }
        Step::Filter(f) => {
            let items: Vec<&Value> = match v {
                Value::Array(a) => a.iter().collect(),
                Value::Object(m) => m.values().collect(),
                _ => Vec::new(),
            };
            for item in items {
                if f.matches(item) {
                    next.push(item);
                }
            }
        }
    }
}

fn descend<'a>(name: &str, v: &'a Value, next: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            if let Some(x) = m.get(name) {
                next.push(x);
            }
            for x in m.values() {
                descend(name, x, next);
            }
        }
        Value::Array(a) => {
            for x in a {
                descend(name, x, next);
            }
        }
        _ => {}
    }
}

impl Filter {
    fn matches(&self, item: &Value) -> bool {
        let found = eval(&self.path, item);
        let Some((op, want)) = &self.cmp else {
            return !found.is_empty();
        };
        found.iter().any(|got| compare(got, *op, want))
    }
}

fn compare(got: &Value, op: Op, want: &Value) -> bool {
    use std::cmp::Ordering;
    let ord = match (got, want) {
        (Value::Number(a), Value::Number(b)) => a
            .as_f64()
            .zip(b.as_f64())
            .and_then(|(a, b)| a.partial_cmp(&b)),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (a, b) if a == b => Some(Ordering::Equal),
        _ => None,
    };
    match (op, ord) {
        (Op::Eq, o) => o == Some(Ordering::Equal),
        (Op::Ne, o) => o != Some(Ordering::Equal),
        (Op::Lt, Some(o)) => o == Ordering::Less,
        (Op::Le, Some(o)) => o != Ordering::Greater,
        (Op::Gt, Some(o)) => o == Ordering::Greater,
        (Op::Ge, Some(o)) => o != Ordering::Less,
        _ => false,
    }
}

struct Parser<'a> {
    s: &'a str,
    at: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.s[self.at..]
    }

    fn err(&self, what: &str) -> String {
        format!("jsonpath: {what} at position {} of {:?}", self.at, self.s)
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.rest().starts_with(token) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().len() - self.rest().trim_start().len();
        self.at += trimmed;
    }

    /// Text and actions up to the end (or, inside a range, up to `{end}`).
    fn nodes(&mut self, in_range: bool) -> Result<Vec<Node>, String> {
        let mut nodes = Vec::new();
        loop {
            let rest = self.rest();
            if rest.is_empty() {
                if in_range {
                    return Err(self.err("{range} without {end}"));
                }
                return Ok(nodes);
            }
            let Some(open) = rest.find('{') else {
                nodes.push(Node::Text(rest.to_string()));
                self.at = self.s.len();
                continue;
            };
            if open > 0 {
                nodes.push(Node::Text(rest[..open].to_string()));
                self.at += open;
            }
            self.at += 1;
            self.skip_ws();
            if self.eat("end") {
                self.skip_ws();
                if !self.eat("}") {
                    return Err(self.err("expected } after end"));
                }
                if !in_range {
                    return Err(self.err("{end} without {range}"));
                }
                return Ok(nodes);
            }
            if self.eat("range") {
                self.skip_ws();
                let steps = self.path()?;
                self.close()?;
                let body = self.nodes(true)?;
                nodes.push(Node::Range(steps, body));
                continue;
            }
            if self.rest().starts_with('"') {
                let lit = self.string('"')?;
                nodes.push(Node::Text(lit));
                self.close()?;
                continue;
            }
            let steps = self.path()?;
            self.close()?;
            nodes.push(Node::Path(steps));
        }
    }

    fn close(&mut self) -> Result<(), String> {
        self.skip_ws();
        if self.eat("}") {
            Ok(())
        } else {
            Err(self.err("expected }"))
        }
    }

    /// A quoted string with `\n \t \\ \" \'` escapes.
    fn string(&mut self, quote: char) -> Result<String, String> {
        self.at += 1;
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    let Some((_, e)) = chars.next() else { break };
                    out.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        other => other,
                    });
                }
                c if c == quote => {
                    self.at += i + 1;
                    return Ok(out);
                }
                c => out.push(c),
            }
        }
        Err(self.err("unterminated string"))
    }

    /// A path: `$`/`@` optional, then `.field`, `..field`, `[...]` steps.
    fn path(&mut self) -> Result<Vec<Step>, String> {
        let mut steps = Vec::new();
        let _ = self.eat("$") || self.eat("@");
        loop {
            if self.eat("..") {
                let name = self.ident();
                if name.is_empty() {
                    return Err(self.err("expected a field name after .."));
                }
                steps.push(Step::Recursive(name));
            } else if self.eat(".") {
                if self.eat("*") {
                    steps.push(Step::Wildcard);
                    continue;
                }
                let name = self.ident();
                // `{.}`: the current item itself.
                if !name.is_empty() {
                    steps.push(Step::Field(name));
                }
            } else if self.rest().starts_with('[') {
                steps.push(self.bracket()?);
            } else {
                return Ok(steps);
            }
        }
    }

    /// A field name: up to `.`, `[`, `}`, space or an operator; `\.`
    /// keeps a dot in the name (`labels.app\.kubernetes\.io/name`).
    fn ident(&mut self) -> String {
        let mut out = String::new();
        let mut chars = self.rest().char_indices().peekable();
        let mut used = 0;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' if matches!(chars.peek(), Some((_, '.'))) => {
                    out.push('.');
                    chars.next();
                    used = i + 2;
                }
                '.' | '[' | ']' | '}' | '{' | ' ' | ')' | '=' | '!' | '<' | '>' | ',' => break,
                c => {
                    out.push(c);
                    used = i + c.len_utf8();
                }
            }
        }
        self.at += used;
        out
    }

    fn bracket(&mut self) -> Result<Step, String> {
        self.at += 1;
        self.skip_ws();
        if self.eat("?(") {
            self.skip_ws();
            if !self.rest().starts_with('@') {
                return Err(self.err("a filter starts with @"));
            }
            let path = self.path()?;
            self.skip_ws();
            let op = [
                ("==", Op::Eq),
                ("!=", Op::Ne),
                ("<=", Op::Le),
                (">=", Op::Ge),
                ("<", Op::Lt),
                (">", Op::Gt),
            ]
            .into_iter()
            .find(|(t, _)| self.rest().starts_with(t));
            let cmp = match op {
                Some((t, op)) => {
                    self.at += t.len();
                    self.skip_ws();
                    Some((op, self.literal()?))
                }
                None => None,
            };
            self.skip_ws();
            if !self.eat(")]") {
                return Err(self.err("expected )] to end the filter"));
            }
            return Ok(Step::Filter(Filter { path, cmp }));
        }
        let mut parts = Vec::new();
        loop {
            self.skip_ws();
            let part = if self.eat("*") {
                Step::Wildcard
            } else if let Some(q) = self
                .rest()
                .chars()
                .next()
                .filter(|c| *c == '\'' || *c == '"')
            {
                Step::Field(self.string(q)?)
            } else {
                self.index_or_slice()?
            };
            parts.push(part);
            self.skip_ws();
            if self.eat("]") {
                break;
            }
            if !self.eat(",") {
                return Err(self.err("expected , or ]"));
            }
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Step::Union(parts)
        })
    }

    fn int(&mut self) -> Option<i64> {
        let rest = self.rest();
        let len = rest
            .char_indices()
            .take_while(|(i, c)| c.is_ascii_digit() || (*i == 0 && *c == '-'))
            .count();
        let n = rest[..len].parse().ok()?;
        self.at += len;
        Some(n)
    }

    fn index_or_slice(&mut self) -> Result<Step, String> {
        let start = self.int();
        self.skip_ws();
        if self.eat(":") {
            self.skip_ws();
            let end = self.int();
            return Ok(Step::Slice(start, end));
        }
        start
            .map(Step::Index)
            .ok_or_else(|| self.err("expected an index, a slice, *, a quoted key or a filter"))
    }

    /// A filter's right side: a quoted string, a number, true/false/null.
    fn literal(&mut self) -> Result<Value, String> {
        if let Some(q) = self
            .rest()
            .chars()
            .next()
            .filter(|c| *c == '\'' || *c == '"')
        {
            return Ok(Value::String(self.string(q)?));
        }
        let rest = self.rest();
        let len = rest
            .find(|c: char| c == ')' || c.is_whitespace())
            .unwrap_or(rest.len());
        let word = &rest[..len];
        let v: Value = serde_json::from_str(word)
            .map_err(|_| self.err(&format!("{word:?} is not a string, number or boolean")))?;
        self.at += len;
        Ok(v)
    }
}

#[cfg(test)]
mod tests;
