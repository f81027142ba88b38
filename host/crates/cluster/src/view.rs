//! The membership view: what readers (the HTTP API, `/metrics`, the UI) see of the
//! member table. The transport publishes a fresh [`MemberList`] whenever it changes.

use crate::wire::State;
use serde::Serialize;
use std::net::SocketAddr;

/// One member as we see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemberInfo {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Address")]
    pub address: SocketAddr,
    /// Serialized as `alive`, `suspect`, `dead` or `left`.
    #[serde(rename = "State")]
    pub state: State,
    #[serde(rename = "Incarnation")]
    pub incarnation: u32,
    #[serde(rename = "Generation")]
    pub generation: u64,
    #[serde(rename = "Local")]
    pub local: bool,
}

impl MemberInfo {
    /// Alive or suspect: a member whose services stand (Sidecar's `ClusterMembers`).
    pub fn is_live(&self) -> bool {
        self.state.is_live()
    }
}

/// Every member we know (ourselves included), sorted by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MemberList {
    #[serde(rename = "ClusterName")]
    pub cluster_name: String,
    #[serde(rename = "Members")]
    pub members: Vec<MemberInfo>,
    /// At least one other member is live, or there are no seeds to join (`/health`,
    /// `sidecar_gossip_joined`). Not part of `/api/members.json`.
    #[serde(skip)]
    pub joined: bool,
}

impl MemberList {
    /// A list of one: this node, alive (before or without a cluster).
    pub fn just(name: &str, address: SocketAddr) -> MemberList {
        MemberList {
            cluster_name: String::new(),
            members: vec![MemberInfo {
                name: name.to_string(),
                address,
                state: State::Alive,
                incarnation: 0,
                generation: 0,
                local: true,
            }],
            joined: true,
        }
    }

    pub fn live(&self) -> impl Iterator<Item = &MemberInfo> {
        self.members.iter().filter(|m| m.is_live())
    }

    pub fn count(&self, state: State) -> usize {
        self.members.iter().filter(|m| m.state == state).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_serialize_as_sidecar_words_and_live_means_alive_or_suspect() {
        let mut list = MemberList::just("a", SocketAddr::from(([127, 0, 0, 1], 7946)));
        list.members[0].state = State::Suspect;
        let json = serde_json::to_value(&list).expect("json");
        assert_eq!(json["Members"][0]["State"], "suspect");
        assert_eq!(list.live().count(), 1);
        list.members[0].state = State::Dead;
        assert_eq!(list.live().count(), 0);
        assert_eq!(list.count(State::Dead), 1);
    }
}
