//! What the API needs from the cluster: who the members are (for `ClusterMembers`, the
//! UI and `/metrics`) and the cluster's own metric lines. The cluster layer implements
//! [`Membership`]; until it is wired in, [`JustMe`] reports this node alone.

/// A member's state as the failure detector sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MemberState {
    Alive,
    Suspect,
    Dead,
    Left,
}

impl MemberState {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Alive => "alive",
            MemberState::Suspect => "suspect",
            MemberState::Dead => "dead",
            MemberState::Left => "left",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Member {
    pub name: String,
    pub state: MemberState,
}

pub trait Membership: Send + Sync {
    /// Every member known, ourselves included, any state.
    fn members(&self) -> Vec<Member>;

    /// Extra Prometheus text lines (gossip bytes, drops, ...). Each line ends in `\n`.
    fn render_metrics(&self, _out: &mut String) {}

    /// The full member table `GET /api/members.json` serves (addresses, incarnations,
    /// generations); `None` without a cluster layer.
    fn table(&self) -> Option<serde_json::Value> {
        None
    }
}

/// A membership of one: this node. Used before (or without) the cluster layer.
pub struct JustMe(pub String);

impl Membership for JustMe {
    fn members(&self) -> Vec<Member> {
        vec![Member {
            name: self.0.clone(),
            state: MemberState::Alive,
        }]
    }
}

/// Adapts a closure, for callers that keep membership elsewhere.
pub struct MembersFn<F>(pub F);

impl<F: Fn() -> Vec<Member> + Send + Sync> Membership for MembersFn<F> {
    fn members(&self) -> Vec<Member> {
        (self.0)()
    }
}
