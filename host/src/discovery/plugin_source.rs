//! Discovery-source plugins: each one configured in plugins.toml is polled on its
//! interval and what it returns is announced. An error keeps the previous result.

use super::{LocalService, Origin, SourceHandle};
use crate::metrics::PluginMetrics;
use sidecar_catalog::Timestamp;
use sidecar_plugin_host::{LoadedDiscovery, PluginError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Polls `plugin` forever, publishing each complete answer.
pub async fn run(
    plugin: LoadedDiscovery,
    origin: Origin,
    handle: SourceHandle,
    plugins: Arc<PluginMetrics>,
) {
    let Origin {
        node: me,
        advertise_ip,
    } = origin;
    // `created` left zero by the plugin: when this process first saw the service.
    let mut first_seen: HashMap<String, Timestamp> = HashMap::new();
    let mut tick = tokio::time::interval(plugin.interval.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match plugin.source.discover().await {
            Ok(found) => {
                let now = Timestamp::now();
                let services: Vec<LocalService> = found
                    .into_iter()
                    .map(|d| {
                        let mut l = LocalService::from_discovered(d, &me, &advertise_ip);
                        let c = &mut l.service.created;
                        if *c == Timestamp::UNIX_EPOCH || c.is_go_zero() {
                            *c = *first_seen.entry(l.service.id.clone()).or_insert(now);
                        }
                        l
                    })
                    .collect();
                first_seen.retain(|id, _| services.iter().any(|s| &s.service.id == id));
                handle.publish(services);
            }
            Err(e) => {
                if !matches!(e, PluginError::Failed { .. }) {
                    plugins.error(e.plugin());
                }
                handle.fail_first(e.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::combine;
    use async_trait::async_trait;
    use parking_lot::Mutex;
    use sidecar_catalog::Service;
    use sidecar_plugin_host::Discovered;
    use sidecar_plugin_host::DiscoverySource;

    struct Scripted(Mutex<Vec<Result<Vec<Discovered>, PluginError>>>);

    #[async_trait]
    impl DiscoverySource for Scripted {
        async fn discover(&self) -> Result<Vec<Discovered>, PluginError> {
            let mut v = self.0.lock();
            if v.len() > 1 {
                v.remove(0)
            } else {
                v[0].clone()
            }
        }
    }

    fn found(id: &str) -> Discovered {
        Discovered {
            service: Service {
                id: id.into(),
                name: "n".into(),
                ..Service::default()
            },
            check: None,
            listen_port: None,
        }
    }

    #[tokio::test]
    async fn errors_keep_the_previous_answer() {
        let src = Scripted(Mutex::new(vec![
            Ok(vec![found("a")]),
            Err(PluginError::Trap {
                plugin: "p".into(),
                detail: "boom".into(),
            }),
        ]));
        let (handle, rx) = SourceHandle::new("plugin:p");
        let (mut view, task) = combine(vec![("plugin:p".into(), rx)]);
        tokio::spawn(task);
        let metrics = Arc::new(PluginMetrics::default());
        tokio::spawn(run(
            LoadedDiscovery {
                name: "p".into(),
                source: Arc::new(src),
                interval: Duration::from_millis(100),
            },
            Origin {
                node: "me".into(),
                advertise_ip: "10.0.0.1".into(),
            },
            handle,
            metrics.clone(),
        ));
        let v = view
            .wait_for(|v| v.as_ref().is_some_and(|v| v.sources[0].1.is_some()))
            .await
            .expect("open")
            .clone()
            .expect("view");
        assert_eq!(v.services.len(), 1);
        assert_eq!(v.services[0].service.hostname, "me");
        assert!(metrics.errors("p") >= 1);
    }
}
