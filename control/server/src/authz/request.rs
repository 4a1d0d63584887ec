//! What a request asks for, from its method, path and query, as
//! Kubernetes' RequestInfo resolver reads it:
//! `/api/v1[/namespaces/NS]/RESOURCE[/NAME[/SUBRESOURCE]]` and the same
//! under `/apis/GROUP/VERSION`; anything else is a non-resource path.

/// The verb, as Kubernetes names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
    Other,
}

impl std::fmt::Display for Verb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
            Verb::Other => "use",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    pub verb: Verb,
    pub path: String,
    /// API group ("" for the core group); `None` for a non-resource path.
    pub group: Option<String>,
    pub resource: Option<String>,
    pub subresource: Option<String>,
    pub namespace: Option<String>,
    /// The object's name; for a create, filled from the body by the caller.
    pub name: Option<String>,
}

impl RequestInfo {
    /// Reads `method`, `path` and whether the query asks to watch.
    pub fn parse(method: &str, path: &str, watch: bool) -> Self {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (group, rest) = match parts.as_slice() {
            ["api", "v1", rest @ ..] => (Some(String::new()), rest),
            ["apis", g, _v, rest @ ..] => (Some((*g).to_string()), rest),
            _ => (None, &[][..]),
        };
        let mut info = Self {
            verb: Verb::Other,
            path: path.to_string(),
            group: None,
            resource: None,
            subresource: None,
            namespace: None,
            name: None,
        };
        let rest: Vec<&str> = match rest {
            ["namespaces", ns, tail @ ..] if !tail.is_empty() => {
                info.namespace = Some((*ns).to_string());
                tail.to_vec()
            }
            other => other.to_vec(),
        };
        if group.is_some() && !rest.is_empty() && !rest[0].is_empty() {
            info.group = group;
            info.resource = Some(rest[0].to_string());
            info.name = rest.get(1).map(|s| s.to_string());
            info.subresource = rest.get(2).map(|s| s.to_string());
        }
        let named = info.name.is_some() || info.resource.is_none();
        info.verb = match method {
            "GET" | "HEAD" if watch => Verb::Watch,
            "GET" | "HEAD" if named => Verb::Get,
            "GET" | "HEAD" => Verb::List,
            "POST" => Verb::Create,
            "PUT" => Verb::Update,
            "PATCH" => Verb::Patch,
            "DELETE" if named => Verb::Delete,
            "DELETE" => Verb::DeleteCollection,
            _ => Verb::Other,
        };
        info
    }

    /// A list or watch whose field selector is exactly
    /// `metadata.name=NAME` names one object, as Kubernetes' request info
    /// reads it: the authorizer then judges it like a get of NAME.
    pub fn with_name_selector(mut self, field_selector: Option<&str>) -> Self {
        if !matches!(self.verb, Verb::List | Verb::Watch) || self.name.is_some() {
            return self;
        }
        if let Some(sel) = field_selector.and_then(|s| keel_api::FieldSelector::parse(s).ok())
            && let [(field, true, value)] = sel.terms.as_slice()
            && field == "metadata.name"
            && !value.is_empty()
        {
            self.name = Some(value.clone());
        }
        self
    }

    /// `pods/status`, `nodes`.
    pub fn resource_path(&self) -> String {
        match (&self.resource, &self.subresource) {
            (Some(r), Some(s)) => format!("{r}/{s}"),
            (Some(r), None) => r.clone(),
            (None, _) => self.path.clone(),
        }
    }

    /// Kubernetes' 403 message.
    pub fn forbidden(&self, user: &str, why: &str) -> String {
        let Some(resource) = &self.resource else {
            return format!(
                "forbidden: User {user:?} cannot {} path {:?}: {why}",
                self.verb, self.path
            );
        };
        let object = match &self.name {
            Some(n) => format!("{resource} {n:?}"),
            None => resource.clone(),
        };
        let scope = match &self.namespace {
            Some(ns) => format!("in the namespace {ns:?}"),
            None => "at the cluster scope".into(),
        };
        format!(
            "{object} is forbidden: User {user:?} cannot {} resource {:?} in API group {:?} {scope}: {why}",
            self.verb,
            self.resource_path(),
            self.group.as_deref().unwrap_or_default(),
        )
    }
}
