//! The ADS gRPC service (tonic): one task per Envoy stream, driving a [`Stream`] state
//! machine with Envoy's requests, new snapshots and a one-second tick.

use super::resources::XdsSnapshot;
use super::status::{StreamInfo, XdsStatus};
use super::stream::{Request as XdsRequest, Response as XdsResponse, Stream};
use sidecar_catalog::Timestamp;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};
use xds_api::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use xds_api::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use xds_api::pb::google::protobuf::Any;

/// The published state of the world; `None` until the first full discovery.
pub type SnapshotRx = watch::Receiver<Option<Arc<XdsSnapshot>>>;

pub struct AdsServer {
    snapshots: SnapshotRx,
    status: Arc<XdsStatus>,
    next_id: AtomicU64,
}

impl AdsServer {
    pub fn new(snapshots: SnapshotRx, status: Arc<XdsStatus>) -> Self {
        AdsServer {
            snapshots,
            status,
            next_id: AtomicU64::new(1),
        }
    }
}

type ResponseStream<T> = Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl AggregatedDiscoveryService for AdsServer {
    type StreamAggregatedResourcesStream = ResponseStream<DiscoveryResponse>;
    type DeltaAggregatedResourcesStream = ResponseStream<DeltaDiscoveryResponse>;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        let peer = request
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(16);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.status
            .counters
            .streams_total
            .fetch_add(1, Ordering::Relaxed);
        tokio::spawn(run_stream(
            id,
            peer,
            inbound,
            tx,
            self.snapshots.clone(),
            self.status.clone(),
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn delta_aggregated_resources(
        &self,
        _request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        Err(Status::unimplemented(
            "incremental (delta) xDS is not served; use ads_config.api_type: GRPC",
        ))
    }
}

fn to_request(r: DiscoveryRequest) -> XdsRequest {
    XdsRequest {
        type_url: r.type_url,
        version_info: r.version_info,
        names: r.resource_names,
        nonce: r.response_nonce,
        error: r
            .error_detail
            .map(|s| format!("code {}: {}", s.code, s.message)),
    }
}

fn to_response(r: XdsResponse) -> DiscoveryResponse {
    DiscoveryResponse {
        version_info: r.version,
        resources: r
            .resources
            .iter()
            .map(|res| Any {
                type_url: res.type_url.clone(),
                value: res.value.clone(),
            })
            .collect(),
        type_url: r.type_url,
        nonce: r.nonce,
        ..Default::default()
    }
}

async fn run_stream(
    id: u64,
    peer: String,
    mut inbound: Streaming<DiscoveryRequest>,
    tx: mpsc::Sender<Result<DiscoveryResponse, Status>>,
    mut snapshots: SnapshotRx,
    status: Arc<XdsStatus>,
) {
    let mut stream = Stream::new();
    let mut info = StreamInfo {
        node_id: String::new(),
        node_cluster: String::new(),
        peer,
        connected_at: Timestamp::now().to_rfc3339(),
        types: Vec::new(),
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut out = match snapshots.borrow_and_update().clone() {
        Some(s) => stream.on_snapshot(s, Instant::now()),
        None => Vec::new(),
    };
    status.stream_update(id, info.clone());
    'stream: loop {
        for r in out.drain(..) {
            status.counters.pushes.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(node = %info.node_id, type_url = %r.type_url, version = %r.version, nonce = %r.nonce, resources = r.resources.len(), "xDS push");
            if tx.send(Ok(to_response(r))).await.is_err() {
                break 'stream;
            }
        }
        account(&mut stream, &status, &info.node_id);
        info.types = stream.report();
        status.stream_update(id, info.clone());
        tokio::select! {
            msg = inbound.message() => match msg {
                Ok(Some(req)) => {
                    if info.node_id.is_empty()
                        && let Some(node) = &req.node
                    {
                        info.node_id = node.id.clone();
                        info.node_cluster = node.cluster.clone();
                        tracing::info!(node = %info.node_id, peer = %info.peer, "Envoy connected");
                    }
                    out = stream.on_request(to_request(req), Instant::now());
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(node = %info.node_id, "ADS stream ended: {e}");
                    break;
                }
            },
            changed = snapshots.changed() => {
                if changed.is_err() {
                    break;
                }
                if let Some(s) = snapshots.borrow_and_update().clone() {
                    out = stream.on_snapshot(s, Instant::now());
                }
            }
            _ = tick.tick() => out = stream.on_tick(Instant::now()),
        }
    }
    tracing::info!(node = %info.node_id, "Envoy disconnected");
    status.stream_closed(id);
}

fn account(stream: &mut Stream, status: &XdsStatus, node: &str) {
    let ev = std::mem::take(&mut stream.events);
    let c = &status.counters;
    for (_, latency) in &ev.acks {
        c.acks.fetch_add(1, Ordering::Relaxed);
        c.ack_latency_us_sum
            .fetch_add(latency.as_micros() as u64, Ordering::Relaxed);
    }
    for (type_url, message) in &ev.nacks {
        status.nacked(node, type_url, message);
    }
    c.stale_nonces.fetch_add(ev.stale, Ordering::Relaxed);
    c.phase_timeouts
        .fetch_add(ev.phase_timeouts, Ordering::Relaxed);
}

/// Binds the ADS port (errors surface at startup) and returns the serving future.
pub async fn serve(
    addr: SocketAddr,
    server: AdsServer,
) -> anyhow::Result<impl std::future::Future<Output = Result<(), tonic::transport::Error>>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} for xDS (ENVOY_GRPC_PORT): {e}"))?;
    tracing::info!(%addr, "xDS (ADS) server listening");
    let svc = AggregatedDiscoveryServiceServer::new(server)
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(usize::MAX);
    Ok(tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .add_service(svc)
        .serve_with_incoming(TcpListenerStream::new(listener)))
}
