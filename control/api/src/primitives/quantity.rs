//! Resource quantities as Kubernetes writes them: `500m`, `2`, `0.5`,
//! `128Mi`, `1G`, `1e3`. Kept as the user wrote them and parsed on demand.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A quantity such as `250m` CPU or `64Mi` memory.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Quantity(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a quantity: {reason}")]
pub struct QuantityError {
    pub value: String,
    pub reason: &'static str,
}

impl Quantity {
    /// Parses and keeps the text.
    pub fn parse(text: &str) -> Result<Self, QuantityError> {
        milli(text)?;
        Ok(Self(text.to_string()))
    }

    pub fn from_milli(m: u64) -> Self {
        if m.is_multiple_of(1000) {
            Self((m / 1000).to_string())
        } else {
            Self(format!("{m}m"))
        }
    }

    pub fn from_bytes(b: u64) -> Self {
        const MI: u64 = 1 << 20;
        if b.is_multiple_of(MI) {
            Self(format!("{}Mi", b / MI))
        } else {
            Self(b.to_string())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value in thousandths, rounded up (CPU in millicores).
    pub fn milli(&self) -> u64 {
        milli(&self.0).unwrap_or(0)
    }

    /// The value as a whole number, rounded up (memory in bytes).
    pub fn value(&self) -> u64 {
        self.milli().div_ceil(1000)
    }
}

/// Parses to thousandths of a unit, rounding up like Kubernetes does.
fn milli(text: &str) -> Result<u64, QuantityError> {
    let err = |reason| QuantityError {
        value: text.to_string(),
        reason,
    };
    let t = text.trim();
    if t.is_empty() {
        return Err(err("empty"));
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, suffix) = t.split_at(split);
    if number.is_empty() || number.matches('.').count() > 1 || number == "." {
        return Err(err(
            "expected a non-negative number with an optional suffix",
        ));
    }
    // (multiplier numerator, denominator) applied to thousandths.
    let (num, den): (u128, u128) = match suffix {
        "n" => (1, 1_000_000),
        "u" => (1, 1000),
        "m" => (1, 1),
        "" => (1000, 1),
        "k" => (1000 * 1000, 1),
        "M" => (1000 * 1_000_000, 1),
        "G" => (1000 * 1_000_000_000, 1),
        "T" => (1000 * 1_000_000_000_000, 1),
        "P" => (1000 * 1_000_000_000_000_000, 1),
        "Ki" => (1000 << 10, 1),
        "Mi" => (1000 << 20, 1),
        "Gi" => (1000 << 30, 1),
        "Ti" => (1000 << 40, 1),
        "Pi" => (1000 << 50, 1),
        s if s.starts_with(['e', 'E']) => {
            let exp: u32 = s[1..].parse().map_err(|_| err("bad exponent"))?;
            if exp > 18 {
                return Err(err("exponent too large"));
            }
            (1000 * 10u128.pow(exp), 1)
        }
        _ => {
            return Err(err(
                "unknown suffix (use m, k, M, G, T, P, Ki, Mi, Gi, Ti, Pi or eN)",
            ));
        }
    };
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if frac.len() > 9 {
        return Err(err("more than 9 decimal places"));
    }
    let int: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| err("number too large"))?
    };
    let frac_digits = frac.len() as u32;
    let frac: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| err("bad fraction"))?
    };
    let scale = 10u128.pow(frac_digits);
    let total = int
        .checked_mul(scale)
        .and_then(|t| t.checked_add(frac))
        .and_then(|t| t.checked_mul(num))
        .ok_or_else(|| err("number too large"))?;
    let value = total.div_ceil(scale * den);
    u64::try_from(value).map_err(|_| err("number too large"))
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Kubernetes accepts `cpu: 2` (a YAML number) as well as `cpu: "2"`.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Int(u64),
            Float(f64),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Text(s) => s,
            Raw::Int(n) => n.to_string(),
            Raw::Float(f) => f.to_string(),
        };
        Quantity::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A number or a string, as Kubernetes' schema has it (kubectl shows the
/// type as `<Quantity>`).
impl schemars::JsonSchema for Quantity {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Quantity".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A quantity: a number with an optional suffix, a binary one (`Ki`, `Mi`, `Gi`, `Ti`, `Pi`, `Ei`), a decimal one (`m` for thousandths, `k`, `M`, `G`, `T`, `P`, `E`) or an exponent (`1e3`): `250m` CPU, `64Mi` memory.",
            "x-kubernetes-int-or-string": true,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
        })
    }
}

#[cfg(test)]
mod tests;
