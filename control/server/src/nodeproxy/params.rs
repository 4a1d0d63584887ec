//! Kubernetes' `PodLogOptions` from a query string: `container`, `follow`,
//! `previous`, `tailLines`, `sinceSeconds`, `timestamps`, `limitBytes`,
//! validated as the apiserver does (`tailLines` ≥ 0, `sinceSeconds` and
//! `limitBytes` ≥ 1), other names ignored (as the apiserver does), and
//! written back as the agent's query.

use std::collections::HashMap;

fn boolean(name: &str, v: &str) -> Result<bool, String> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" | "" => Ok(false),
        _ => Err(format!("{name}: {v:?} is not true or false")),
    }
}

fn number(name: &str, v: &str, min: i64) -> Result<i64, String> {
    let n: i64 = v
        .parse()
        .map_err(|_| format!("{name}: {v:?} is not an integer"))?;
    if n < min {
        return Err(format!("{name}: {n} must be at least {min}"));
    }
    Ok(n)
}

/// The agent's query for `q`, or what is wrong with it. Pure.
pub fn log_query(q: &HashMap<String, String>) -> Result<String, String> {
    let mut keys: Vec<&String> = q.keys().collect();
    keys.sort();
    let mut out = Vec::new();
    for k in keys {
        let v = q[k].as_str();
        match k.as_str() {
            "container" => {
                keel_api::validate::dns1123_label(v)
                    .map_err(|e| format!("container {v:?}: {e}"))?;
                out.push(format!("container={v}"));
            }
            "follow" | "previous" | "timestamps" => {
                out.push(format!("{k}={}", boolean(k, v)?));
            }
            "tailLines" => out.push(format!("{k}={}", number(k, v, 0)?)),
            "sinceSeconds" | "limitBytes" => out.push(format!("{k}={}", number(k, v, 1)?)),
            "sinceTime" => {
                return Err("sinceTime: not supported; use sinceSeconds".into());
            }
            // Others (kubectl's `timeout`, `pretty`,
            // `insecureSkipTLSVerifyBackend`) are ignored, as the
            // apiserver ignores query parameters it does not know.
            _ => {}
        }
    }
    Ok(out.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kubernetes_parameters_become_the_agent_s_query() {
        assert_eq!(log_query(&q(&[])).unwrap(), "");
        assert_eq!(
            log_query(&q(&[
                ("container", "web"),
                ("follow", "true"),
                ("tailLines", "5"),
                ("sinceSeconds", "60"),
                ("timestamps", "1"),
                ("limitBytes", "100"),
                ("previous", "false"),
            ]))
            .unwrap(),
            "container=web&follow=true&limitBytes=100&previous=false&sinceSeconds=60&tailLines=5&timestamps=true"
        );
    }

    #[test]
    fn invalid_parameters_are_refused_by_name() {
        let e = log_query(&q(&[("tailLines", "-1")])).unwrap_err();
        assert!(e.contains("tailLines") && e.contains("at least 0"), "{e}");
        let e = log_query(&q(&[("sinceSeconds", "0")])).unwrap_err();
        assert!(e.contains("sinceSeconds"), "{e}");
        let e = log_query(&q(&[("follow", "yes")])).unwrap_err();
        assert!(e.contains("follow"), "{e}");
        let e = log_query(&q(&[("container", "a&b=c")])).unwrap_err();
        assert!(e.contains("container"), "{e}");
        assert_eq!(log_query(&q(&[("timeout", "20s")])).unwrap(), "");
    }
}
