//! Where each member listens: its peer and HTTP addresses, from the command line at start and
//! from every configuration change after (a member added later brings its addresses along).

use consensus_core::{Membership, NodeId};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

/// One member's addresses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Addrs {
    /// Where it accepts peer connections.
    pub peer: Option<SocketAddr>,
    /// Where it serves the HTTP API.
    pub http: Option<SocketAddr>,
}

impl Addrs {
    /// The form a membership change carries: `peer=ADDR http=ADDR`.
    pub fn encode(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = self.peer {
            parts.push(format!("peer={p}"));
        }
        if let Some(h) = self.http {
            parts.push(format!("http={h}"));
        }
        parts.join(" ")
    }

    /// Reads [`Addrs::encode`]'s form; a bare address is the peer address.
    pub fn decode(s: &str) -> Addrs {
        let mut a = Addrs::default();
        for part in s.split_whitespace() {
            if let Some(p) = part.strip_prefix("peer=") {
                a.peer = p.parse().ok();
            } else if let Some(h) = part.strip_prefix("http=") {
                a.http = h.parse().ok();
            } else {
                a.peer = part.parse().ok();
            }
        }
        a
    }
}

/// Every member's addresses this node knows, shared by its HTTP API and front-ends.
#[derive(Clone, Default)]
pub struct Directory(Arc<RwLock<BTreeMap<NodeId, Addrs>>>);

impl Directory {
    /// The addresses given at start: peer addresses and HTTP addresses by member.
    pub fn new(peers: &BTreeMap<NodeId, SocketAddr>, http: &BTreeMap<NodeId, SocketAddr>) -> Self {
        let mut all: BTreeMap<NodeId, Addrs> = BTreeMap::new();
        for (&id, &p) in peers {
            all.entry(id).or_default().peer = Some(p);
        }
        for (&id, &h) in http {
            all.entry(id).or_default().http = Some(h);
        }
        Directory(Arc::new(RwLock::new(all)))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<NodeId, Addrs>> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Member `id`'s HTTP address, when known.
    pub fn http(&self, id: NodeId) -> Option<SocketAddr> {
        self.read().get(&id).and_then(|a| a.http)
    }

    /// Member `id`'s addresses.
    pub fn get(&self, id: NodeId) -> Addrs {
        self.read().get(&id).copied().unwrap_or_default()
    }

    /// Takes in the addresses a configuration carries (known ones are kept where it has none).
    pub fn learn(&self, m: &Membership) {
        let mut all = self.0.write().unwrap_or_else(|p| p.into_inner());
        for (&id, s) in &m.addrs {
            let a = Addrs::decode(s);
            let e = all.entry(id).or_default();
            e.peer = a.peer.or(e.peer);
            e.http = a.http.or(e.http);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_and_a_configuration_teaches_new_ones() {
        let a = Addrs {
            peer: Some("127.0.0.1:7004".parse().unwrap()),
            http: Some("127.0.0.1:8004".parse().unwrap()),
        };
        assert_eq!(a.encode(), "peer=127.0.0.1:7004 http=127.0.0.1:8004");
        assert_eq!(Addrs::decode(&a.encode()), a);
        assert_eq!(Addrs::decode("127.0.0.1:7004").peer, a.peer);
        let d = Directory::new(
            &[(1, "127.0.0.1:7001".parse().unwrap())].into(),
            &[(1, "127.0.0.1:8001".parse().unwrap())].into(),
        );
        let mut m = Membership::of_voters(&[1]);
        m.addrs.insert(4, a.encode());
        d.learn(&m);
        assert_eq!(d.http(4), a.http);
        assert_eq!(d.http(1), Some("127.0.0.1:8001".parse().unwrap()));
    }
}
