//! Discovery source `discovery-kubernetes`: Sidecar's `kubernetes_api` method. It reads
//! Services, Nodes and Pods from the Kubernetes API (v1) and announces every pod on this
//! node that carries a `ServiceName` label (and not `SidecarDiscover=false`) on the
//! node ports of the Service with the same `ServiceName` label, at the node's
//! `InternalIP`, with the `AlwaysSuccessful` check. `ProxyMode` comes from the pod's
//! label (`tcp`, `ws`; anything else is `http`). Details: docs/discovery.md.
//!
//! Every request goes through the host's `http` import, so the API server must be in
//! the plugin's `http` grant; the service account's token is sent by the host
//! (`http.get-with-bearer-token`, `grants.bearer_token_file`) and its CA trusted through
//! `grants.ca_file`: the plugin never sees either. With `SIDECAR_DISCOVERY` containing
//! `kubernetes_api`, the daemon fills all of that from Sidecar's `K8S_*` variables.
//!
//! Settings: `api_url` (required, `https://10.96.0.1:443`), `node_name` (required; the
//! daemon passes its node name), `namespace` (`default`; where pods are listed),
//! `timeout_ms` (3000, per request), `bearer_token` (true).
//!
//! A request that fails or answers non-2xx, or a document that is not the list asked
//! for, fails the poll: the host keeps the last good set and reports the error. An
//! object that is not shaped as the API reference says is skipped alone and logged
//! once with the reason.

mod k8s;

use k8s::{K8sNode, K8sPod, K8sService, Page};
use serde_json::Value;
use sidecar_plugin_sdk::discovery_source::{self, Discovered, DiscoverySource};
use sidecar_plugin_sdk::{Settings, http, log, truncate};
use std::cell::RefCell;
use std::collections::BTreeSet;

/// Objects per page of a list (a page must fit the host's 1 MiB response cap).
const SERVICES_PER_PAGE: u32 = 200;
const PODS_PER_PAGE: u32 = 100;
const NODES_PER_PAGE: u32 = 20;
/// Pages followed per list and poll.
const MAX_PAGES: usize = 50;

struct Config {
    api_url: String,
    node_name: String,
    namespace: String,
    timeout_ms: u32,
    bearer_token: bool,
}

thread_local! {
    static CONFIG: RefCell<Option<Config>> = const { RefCell::new(None) };
    /// Skipped objects already logged (logged again once they were fixed and broke anew).
    static REPORTED: RefCell<BTreeSet<String>> = const { RefCell::new(BTreeSet::new()) };
}

struct DiscoveryKubernetes;

impl DiscoverySource for DiscoveryKubernetes {
    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        let s = Settings::new(
            &settings,
            &[
                "api_url",
                "node_name",
                "namespace",
                "timeout_ms",
                "bearer_token",
            ],
        )?;
        let api_url = s
            .required("api_url")?
            .trim()
            .trim_end_matches('/')
            .to_string();
        if !(api_url.starts_with("http://") || api_url.starts_with("https://")) {
            return Err(format!(
                "`api_url` must be an http:// or https:// URL, got {api_url:?}"
            ));
        }
        let node_name = s.required("node_name")?.trim().to_string();
        if node_name.is_empty() {
            return Err("`node_name` is empty".into());
        }
        let namespace = s.get("namespace").unwrap_or("default").trim().to_string();
        if namespace.is_empty()
            || !namespace
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(format!(
                "`namespace` = {namespace:?} is not a namespace name"
            ));
        }
        let timeout_ms = s
            .parse::<u32>("timeout_ms", "a number of milliseconds")?
            .unwrap_or(3000);
        let bearer_token = s.flag("bearer_token")?.unwrap_or(true);
        CONFIG.with(|c| {
            *c.borrow_mut() = Some(Config {
                api_url,
                node_name,
                namespace,
                timeout_ms,
                bearer_token,
            })
        });
        Ok(())
    }

    fn discover() -> Result<Vec<Discovered>, String> {
        CONFIG.with(|c| {
            let config = c.borrow();
            let config = config.as_ref().ok_or("not configured")?;
            discover(config)
        })
    }
}

fn discover(c: &Config) -> Result<Vec<Discovered>, String> {
    let mut skipped = Vec::new();
    let services: Vec<K8sService> = parse_each(
        list(
            c,
            "/api/v1/services",
            "ServiceList",
            &[("labelSelector", k8s::SERVICE_NAME)],
            SERVICES_PER_PAGE,
            |_| false,
        )?,
        "service",
        k8s::service,
        &mut skipped,
    );
    let node = this_node(c, &mut skipped)?;
    let on_this_node = format!("spec.nodeName={}", c.node_name);
    let pods: Vec<K8sPod> = parse_each(
        list(
            c,
            &format!("/api/v1/namespaces/{}/pods", c.namespace),
            "PodList",
            &[
                ("labelSelector", k8s::SERVICE_NAME),
                ("fieldSelector", on_this_node.as_str()),
            ],
            PODS_PER_PAGE,
            |_| false,
        )?,
        "pod",
        k8s::pod,
        &mut skipped,
    );
    let (found, passed) = k8s::announce(&services, &node, &pods, &c.node_name);
    for why in passed {
        log::log(log::Level::Debug, &why);
    }
    report_skipped(skipped);
    Ok(found)
}

/// This node, by its `Hostname` address (as Sidecar matched it): asked for by name
/// first, else found in the full listing.
fn this_node(c: &Config, skipped: &mut Vec<String>) -> Result<K8sNode, String> {
    let is_me = |n: &K8sNode| n.hostname == c.node_name;
    let field = format!("metadata.name={}", c.node_name);
    for query in [vec![("fieldSelector", field.as_str())], Vec::new()] {
        let items = list(
            c,
            "/api/v1/nodes",
            "NodeList",
            &query,
            NODES_PER_PAGE,
            |page| page.iter().any(|v| k8s::node(v).is_ok_and(|n| is_me(&n))),
        )?;
        let nodes: Vec<K8sNode> = parse_each(items, "node", |v| k8s::node(v).map(Some), skipped);
        if let Some(n) = nodes.into_iter().find(|n| is_me(n)) {
            return Ok(n);
        }
    }
    Err(format!(
        "no node has the Hostname address {:?} (this daemon's node name; set SIDECAR_NODE_NAME or the plugin's `node_name` to the kubelet's host name)",
        c.node_name
    ))
}

/// Parses each item; the malformed ones are set aside with their reason.
fn parse_each<T>(
    items: Vec<Value>,
    what: &str,
    parse: impl Fn(&Value) -> Result<Option<T>, String>,
    skipped: &mut Vec<String>,
) -> Vec<T> {
    items
        .iter()
        .filter_map(|item| match parse(item) {
            Ok(v) => v,
            Err(why) => {
                skipped.push(format!("{what} {}: {why}", k8s::object_name(item)));
                None
            }
        })
        .collect()
}

/// Logs newly skipped objects, once each while they stay broken.
fn report_skipped(skipped: Vec<String>) {
    REPORTED.with(|r| {
        let mut reported = r.borrow_mut();
        for why in &skipped {
            if !reported.contains(why) {
                log::log(
                    log::Level::Warn,
                    &format!("skipped a malformed object: {why}"),
                );
            }
        }
        *reported = skipped.into_iter().collect();
    });
}

/// Every item of a list, following `continue` tokens; stops early when `enough` says
/// a page has what is needed.
fn list(
    c: &Config,
    path: &str,
    kind: &str,
    query: &[(&str, &str)],
    per_page: u32,
    enough: impl Fn(&[Value]) -> bool,
) -> Result<Vec<Value>, String> {
    let mut items = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut url = format!("{}{path}?limit={per_page}", c.api_url);
        for (k, v) in query
            .iter()
            .copied()
            .chain(next.as_deref().map(|n| ("continue", n)))
        {
            url.push_str(&format!("&{k}={}", encode(v)));
        }
        let Page {
            items: page,
            next: more,
        } = get_page(c, &url, kind)?;
        let done = enough(&page);
        items.extend(page);
        match more {
            Some(token) if !done => next = Some(token),
            _ => return Ok(items),
        }
    }
    Err(format!("GET {path}: more than {MAX_PAGES} pages"))
}

fn get_page(c: &Config, url: &str, kind: &str) -> Result<Page, String> {
    let req = http::Request {
        url: url.to_string(),
        headers: vec![("Accept".into(), "application/json".into())],
        timeout_ms: c.timeout_ms,
        max_redirects: 0,
    };
    let resp = if c.bearer_token {
        http::get_with_bearer_token(&req)
    } else {
        http::get(&req)
    }
    .map_err(|e| match e {
        http::Error::Denied(why) => format!("GET {url} denied: {why}"),
        http::Error::Timeout => format!("GET {url}: no answer within {} ms", c.timeout_ms),
        http::Error::Connect(why) | http::Error::InvalidUrl(why) | http::Error::Other(why) => {
            format!("GET {url}: {why}")
        }
    })?;
    let body = String::from_utf8_lossy(&resp.body);
    if !(200..300).contains(&resp.status) {
        // The API explains itself in a `Status` object (`message`).
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_default();
        return Err(format!(
            "GET {url}: HTTP {}{}",
            resp.status,
            if message.is_empty() {
                String::new()
            } else {
                format!(": {}", truncate(&message, 200))
            }
        ));
    }
    k8s::page(&body, kind).map_err(|e| {
        let cut = if resp.body.len() >= 1 << 20 {
            " (the answer reached the host's 1 MiB cap)"
        } else {
            ""
        };
        format!("GET {url}: {e}{cut}")
    })
}

/// Percent-encodes a query value.
fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

discovery_source::export!(DiscoveryKubernetes);

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_encoded() {
        assert_eq!(super::encode("spec.nodeName=n-1"), "spec.nodeName%3Dn-1");
        assert_eq!(super::encode("a b/+"), "a%20b%2F%2B");
    }
}
