//! ZooKeeper's data tree as a replicated state machine: znodes with data, ACL and ZooKeeper's
//! `Stat`, sessions (created and closed by transactions, so ephemeral znodes die with their
//! session on every replica alike), sequential names from the parent's child version, and
//! `multi` applied all or nothing.
//!
//! A zxid here is the log position of the transaction, era in the high 32 bits and sequence
//! number in the low 32: for ZAB exactly ZooKeeper's zxid, for Raft (term, index).

use consensus_core::Position;
use imbl::{OrdMap, OrdSet};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// ZooKeeper's error codes this tree answers with (`KeeperException.Code`).
pub mod code {
    /// No error.
    pub const OK: i32 = 0;
    /// A later operation of a failed `multi`.
    pub const RUNTIME_INCONSISTENCY: i32 = -2;
    /// The request is not implemented.
    pub const UNIMPLEMENTED: i32 = -6;
    /// A malformed request (a bad path, say).
    pub const BAD_ARGUMENTS: i32 = -8;
    /// The znode does not exist.
    pub const NO_NODE: i32 = -101;
    /// The expected version did not match.
    pub const BAD_VERSION: i32 = -103;
    /// Ephemeral znodes cannot have children.
    pub const NO_CHILDREN_FOR_EPHEMERALS: i32 = -108;
    /// The znode already exists.
    pub const NODE_EXISTS: i32 = -110;
    /// The znode has children.
    pub const NOT_EMPTY: i32 = -111;
    /// The session is closed or expired.
    pub const SESSION_EXPIRED: i32 = -112;
}

/// ZooKeeper's per-znode metadata, field for field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat {
    /// Zxid of the create.
    pub czxid: i64,
    /// Zxid of the last data change.
    pub mzxid: i64,
    /// Create time, ms since the epoch (the receiving server's clock, carried in the txn).
    pub ctime: i64,
    /// Last data change time.
    pub mtime: i64,
    /// Data changes since the create.
    pub version: i32,
    /// Child changes since the create.
    pub cversion: i32,
    /// ACL changes (always 0: ACLs are kept as created).
    pub aversion: i32,
    /// The owning session of an ephemeral znode, 0 otherwise.
    pub ephemeral_owner: i64,
    /// Bytes of data.
    pub data_length: i32,
    /// Number of children.
    pub num_children: i32,
    /// Zxid of the last child change.
    pub pzxid: i64,
}

/// One ACL entry: permissions for a scheme's id (stored and returned, not enforced).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acl {
    /// Permission bits.
    pub perms: i32,
    /// Scheme, such as "world".
    pub scheme: String,
    /// The id within the scheme, such as "anyone".
    pub id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Znode {
    data: Vec<u8>,
    acl: Vec<Acl>,
    stat: Stat,
    children: OrdSet<String>,
}

/// A session as every replica knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Negotiated timeout.
    pub timeout_ms: i32,
    /// The password a reconnecting client must show.
    pub password: Vec<u8>,
}

/// A write operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZkWrite {
    /// Create a znode; `sequential` appends the parent's child version as ten digits.
    Create {
        /// Path (of the prefix, when sequential).
        path: String,
        /// Data.
        data: Vec<u8>,
        /// ACL.
        acl: Vec<Acl>,
        /// Dies with the session.
        ephemeral: bool,
        /// Gets a sequence number.
        sequential: bool,
    },
    /// Delete a znode without children, if its version matches (-1: any).
    Delete {
        /// Path.
        path: String,
        /// Expected version.
        version: i32,
    },
    /// Replace the data, if the version matches (-1: any).
    SetData {
        /// Path.
        path: String,
        /// New data.
        data: Vec<u8>,
        /// Expected version.
        version: i32,
    },
    /// Check a version (in a `multi`).
    Check {
        /// Path.
        path: String,
        /// Expected version.
        version: i32,
    },
}

/// A read, served from this replica's tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZkRead {
    /// The znode's stat.
    Exists(String),
    /// Data and stat.
    GetData(String),
    /// Children names and the stat.
    GetChildren(String),
    /// ACL and stat.
    GetAcl(String),
    /// Whether the session lives and its password (for a reconnect).
    Session(i64),
    /// Every live session's id and timeout (for the leader's expiry tracker).
    Sessions,
}

/// A transaction of the tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZkTxn {
    /// Open a session.
    CreateSession {
        /// Its id.
        id: i64,
        /// Negotiated timeout.
        timeout_ms: i32,
        /// Password.
        password: Vec<u8>,
    },
    /// Close (or expire) a session: its ephemeral znodes go with it.
    CloseSession {
        /// Its id.
        id: i64,
    },
    /// One write (`multi` false) or a `multi` of them, for a live session.
    Write {
        /// The session.
        session: i64,
        /// Time of the request at the server that took it, ms since the epoch.
        time_ms: i64,
        /// The operations.
        ops: Vec<ZkWrite>,
        /// All or nothing.
        multi: bool,
    },
}

/// One operation's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZkResult {
    /// Created at this path.
    Created(String, Stat),
    /// Deleted.
    Deleted,
    /// A stat (setData, exists).
    Stat(Stat),
    /// A check passed.
    Checked,
    /// getData.
    Data(Vec<u8>, Stat),
    /// getChildren (sorted names) with the parent's stat.
    Children(Vec<String>, Stat),
    /// getACL.
    Acl(Vec<Acl>, Stat),
    /// A session's state.
    Session(Option<Session>),
    /// Live sessions.
    Sessions(Vec<(i64, i32)>),
    /// Failed with this code.
    Error(i32),
}

/// The results of a transaction or read, and the zxid the reply header carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZkOutput {
    /// The transaction's zxid, or for a read the last zxid applied.
    pub zxid: i64,
    /// One result per operation.
    pub results: Vec<ZkResult>,
}

/// The zxid of a log position.
pub fn zxid(pos: Position) -> i64 {
    ((pos.era << 32) | (pos.seq & 0xffff_ffff)) as i64
}

/// The log position of a zxid.
pub fn position(zxid: i64) -> Position {
    Position::new((zxid as u64) >> 32, (zxid as u64) & 0xffff_ffff)
}

/// ZooKeeper's path rules: absolute, no empty, `.` or `..` segments, no trailing `/` but the
/// root's, no NUL.
pub fn valid_path(path: &str) -> bool {
    if path == "/" {
        return true;
    }
    path.starts_with('/')
        && !path.ends_with('/')
        && !path.contains('\0')
        && path[1..]
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
}

fn parent(path: &str) -> (&str, &str) {
    let i = path.rfind('/').expect("an absolute path");
    (if i == 0 { "/" } else { &path[..i] }, &path[i + 1..])
}

/// The tree and its sessions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZkTree {
    /// Copy-on-write: a snapshot's copy shares it (see `ServiceStore::snapshot_job`).
    nodes: OrdMap<String, Znode>,
    sessions: BTreeMap<i64, Session>,
    /// Each session's ephemeral znodes (derived from the nodes' owners, kept for closing).
    ephemerals: BTreeMap<i64, BTreeSet<String>>,
    last_zxid: i64,
}

impl Default for ZkTree {
    /// The root alone.
    fn default() -> Self {
        let mut nodes = OrdMap::new();
        nodes.insert("/".to_string(), Znode::default());
        ZkTree {
            nodes,
            sessions: BTreeMap::new(),
            ephemerals: BTreeMap::new(),
            last_zxid: 0,
        }
    }
}

/// One change a write made, recorded to undo a failed `multi` (only what changed: a parent's
/// stat and one child name, never a copy of its children).
enum Step {
    /// A znode was created here.
    Created(String),
    /// This znode was deleted.
    Deleted(String, Znode),
    /// A parent's stat before a child was added (`true`) or removed.
    Parent(String, Stat, String, bool),
    /// A znode's data and stat before a setData.
    Data(String, Vec<u8>, Stat),
}

/// The steps of a write, in order.
type Undo = Vec<Step>;

impl ZkTree {
    /// Number of znodes, the root included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Never: the root always exists.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The last zxid applied.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// Applies a transaction committed at `pos`.
    pub fn apply(&mut self, pos: Position, txn: &ZkTxn) -> ZkOutput {
        let z = zxid(pos);
        self.last_zxid = z;
        let results = match txn {
            ZkTxn::CreateSession {
                id,
                timeout_ms,
                password,
            } => {
                if self.sessions.contains_key(id) {
                    vec![ZkResult::Error(code::NODE_EXISTS)]
                } else {
                    self.sessions.insert(
                        *id,
                        Session {
                            timeout_ms: *timeout_ms,
                            password: password.clone(),
                        },
                    );
                    vec![ZkResult::Session(self.sessions.get(id).cloned())]
                }
            }
            ZkTxn::CloseSession { id } => {
                if self.sessions.remove(id).is_some() {
                    let doomed = self.ephemerals.remove(id).unwrap_or_default();
                    let mut undo = Undo::new();
                    for p in doomed {
                        // Ephemerals have no children: this cannot fail.
                        let _ = self.delete(&p, -1, z, &mut undo);
                    }
                }
                vec![ZkResult::Session(None)]
            }
            ZkTxn::Write {
                session,
                time_ms,
                ops,
                multi,
            } => {
                if !self.sessions.contains_key(session) {
                    vec![ZkResult::Error(code::SESSION_EXPIRED); ops.len().max(1)]
                } else {
                    self.write(*session, *time_ms, ops, *multi, z)
                }
            }
        };
        ZkOutput { zxid: z, results }
    }

    fn write(
        &mut self,
        session: i64,
        time: i64,
        ops: &[ZkWrite],
        multi: bool,
        z: i64,
    ) -> Vec<ZkResult> {
        let mut undo = Undo::new();
        let mut results = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            let r = match op {
                ZkWrite::Create {
                    path,
                    data,
                    acl,
                    ephemeral,
                    sequential,
                } => self.create(
                    path,
                    data,
                    acl,
                    *ephemeral,
                    *sequential,
                    session,
                    time,
                    z,
                    &mut undo,
                ),
                ZkWrite::Delete { path, version } => self
                    .delete(path, *version, z, &mut undo)
                    .map(|()| ZkResult::Deleted),
                ZkWrite::SetData {
                    path,
                    data,
                    version,
                } => self.set_data(path, data, *version, time, z, &mut undo),
                ZkWrite::Check { path, version } => match self.nodes.get(path) {
                    None => Err(code::NO_NODE),
                    Some(n) if *version != -1 && n.stat.version != *version => {
                        Err(code::BAD_VERSION)
                    }
                    Some(_) => Ok(ZkResult::Checked),
                },
            };
            match r {
                Ok(r) => results.push(r),
                Err(e) if multi => {
                    // All or nothing: undo, and answer as ZooKeeper does (the ones before the
                    // failure OK, the failure its code, the rest a runtime inconsistency).
                    for step in undo.into_iter().rev() {
                        self.undo(step);
                    }
                    let mut out = vec![ZkResult::Error(code::OK); i];
                    out.push(ZkResult::Error(e));
                    out.extend(vec![
                        ZkResult::Error(code::RUNTIME_INCONSISTENCY);
                        ops.len() - i - 1
                    ]);
                    return out;
                }
                Err(e) => results.push(ZkResult::Error(e)),
            }
        }
        results
    }

    fn undo(&mut self, step: Step) {
        match step {
            Step::Created(path) => {
                self.remove_node(&path);
            }
            Step::Deleted(path, node) => self.insert_node(path, node),
            Step::Parent(path, stat, child, added) => {
                let p = self
                    .nodes
                    .get_mut(&path)
                    .expect("a parent outlives its step");
                p.stat = stat;
                if added {
                    p.children.remove(&child);
                } else {
                    p.children.insert(child);
                }
            }
            Step::Data(path, data, stat) => {
                let n = self
                    .nodes
                    .get_mut(&path)
                    .expect("a set znode outlives its step");
                n.data = data;
                n.stat = stat;
            }
        }
    }

    fn insert_node(&mut self, path: String, node: Znode) {
        if node.stat.ephemeral_owner != 0 {
            self.ephemerals
                .entry(node.stat.ephemeral_owner)
                .or_default()
                .insert(path.clone());
        }
        self.nodes.insert(path, node);
    }

    fn remove_node(&mut self, path: &str) -> Option<Znode> {
        let node = self.nodes.remove(path)?;
        let owner = node.stat.ephemeral_owner;
        if owner != 0 {
            if let Some(set) = self.ephemerals.get_mut(&owner) {
                set.remove(path);
                if set.is_empty() {
                    self.ephemerals.remove(&owner);
                }
            }
        }
        Some(node)
    }

    /// Adds (`true`) or removes a child name of `parent` at zxid `z`, recording the change.
    fn change_child(&mut self, parent: &str, child: &str, added: bool, z: i64, undo: &mut Undo) {
        let p = self.nodes.get_mut(parent).expect("checked by the caller");
        undo.push(Step::Parent(
            parent.to_string(),
            p.stat,
            child.to_string(),
            added,
        ));
        if added {
            p.children.insert(child.to_string());
        } else {
            p.children.remove(child);
        }
        p.stat.cversion += 1;
        p.stat.pzxid = z;
        p.stat.num_children = p.children.len() as i32;
    }

    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        ephemeral: bool,
        sequential: bool,
        session: i64,
        time: i64,
        z: i64,
        undo: &mut Undo,
    ) -> Result<ZkResult, i32> {
        if !valid_path(path) || path == "/" && !sequential {
            return Err(if path == "/" {
                code::NODE_EXISTS
            } else {
                code::BAD_ARGUMENTS
            });
        }
        let (parent_path, _) = parent(path);
        let parent_node = self.nodes.get(parent_path).ok_or(code::NO_NODE)?;
        if parent_node.stat.ephemeral_owner != 0 {
            return Err(code::NO_CHILDREN_FOR_EPHEMERALS);
        }
        let full = if sequential {
            format!("{path}{:010}", parent_node.stat.cversion)
        } else {
            path.to_string()
        };
        if self.nodes.contains_key(&full) {
            return Err(code::NODE_EXISTS);
        }
        let parent_path = parent_path.to_string();
        let stat = Stat {
            czxid: z,
            mzxid: z,
            ctime: time,
            mtime: time,
            ephemeral_owner: if ephemeral { session } else { 0 },
            data_length: data.len() as i32,
            pzxid: z,
            ..Stat::default()
        };
        self.change_child(&parent_path, parent(&full).1, true, z, undo);
        undo.push(Step::Created(full.clone()));
        self.insert_node(
            full.clone(),
            Znode {
                data: data.to_vec(),
                acl: acl.to_vec(),
                stat,
                children: OrdSet::new(),
            },
        );
        Ok(ZkResult::Created(full, stat))
    }

    fn delete(&mut self, path: &str, version: i32, z: i64, undo: &mut Undo) -> Result<(), i32> {
        if !valid_path(path) || path == "/" {
            return Err(code::BAD_ARGUMENTS);
        }
        let n = self.nodes.get(path).ok_or(code::NO_NODE)?;
        if version != -1 && n.stat.version != version {
            return Err(code::BAD_VERSION);
        }
        if !n.children.is_empty() {
            return Err(code::NOT_EMPTY);
        }
        let (parent_path, name) = parent(path);
        let (parent_path, name) = (parent_path.to_string(), name.to_string());
        let node = self.remove_node(path).expect("checked");
        undo.push(Step::Deleted(path.to_string(), node));
        self.change_child(&parent_path, &name, false, z, undo);
        Ok(())
    }

    fn set_data(
        &mut self,
        path: &str,
        data: &[u8],
        version: i32,
        time: i64,
        z: i64,
        undo: &mut Undo,
    ) -> Result<ZkResult, i32> {
        if !valid_path(path) {
            return Err(code::BAD_ARGUMENTS);
        }
        // One lookup (64,000 znodes under one long prefix make each a dozen string compares).
        let n = self.nodes.get_mut(path).ok_or(code::NO_NODE)?;
        if version != -1 && n.stat.version != version {
            return Err(code::BAD_VERSION);
        }
        undo.push(Step::Data(
            path.to_string(),
            std::mem::replace(&mut n.data, data.to_vec()),
            n.stat,
        ));
        n.stat.version += 1;
        n.stat.mzxid = z;
        n.stat.mtime = time;
        n.stat.data_length = data.len() as i32;
        Ok(ZkResult::Stat(n.stat))
    }

    /// Serves a read from this replica's tree.
    pub fn read(&self, op: &ZkRead) -> ZkOutput {
        let node = |p: &str| -> Result<&Znode, i32> {
            if !valid_path(p) {
                return Err(code::BAD_ARGUMENTS);
            }
            self.nodes.get(p).ok_or(code::NO_NODE)
        };
        let r = match op {
            ZkRead::Exists(p) => node(p).map(|n| ZkResult::Stat(n.stat)),
            ZkRead::GetData(p) => node(p).map(|n| ZkResult::Data(n.data.clone(), n.stat)),
            ZkRead::GetChildren(p) => {
                node(p).map(|n| ZkResult::Children(n.children.iter().cloned().collect(), n.stat))
            }
            ZkRead::GetAcl(p) => node(p).map(|n| ZkResult::Acl(n.acl.clone(), n.stat)),
            ZkRead::Session(id) => Ok(ZkResult::Session(self.sessions.get(id).cloned())),
            ZkRead::Sessions => Ok(ZkResult::Sessions(
                self.sessions
                    .iter()
                    .map(|(id, s)| (*id, s.timeout_ms))
                    .collect(),
            )),
        };
        ZkOutput {
            zxid: self.last_zxid,
            results: vec![r.unwrap_or_else(ZkResult::Error)],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(path: &str, data: &str, ephemeral: bool, sequential: bool) -> ZkWrite {
        ZkWrite::Create {
            path: path.into(),
            data: data.into(),
            acl: vec![],
            ephemeral,
            sequential,
        }
    }
    fn write(t: &mut ZkTree, at: u64, ops: Vec<ZkWrite>, multi: bool) -> Vec<ZkResult> {
        t.apply(
            Position::new(1, at),
            &ZkTxn::Write {
                session: 7,
                time_ms: 1000,
                ops,
                multi,
            },
        )
        .results
    }
    fn tree() -> ZkTree {
        let mut t = ZkTree::default();
        t.apply(
            Position::new(1, 1),
            &ZkTxn::CreateSession {
                id: 7,
                timeout_ms: 4000,
                password: vec![1; 16],
            },
        );
        t
    }

    #[test]
    fn zxids_are_positions() {
        let p = Position::new(3, 17);
        assert_eq!(zxid(p), 0x3_0000_0011);
        assert_eq!(position(zxid(p)), p);
    }

    #[test]
    fn create_set_and_versions_as_zookeeper() {
        let mut t = tree();
        assert!(
            matches!(&write(&mut t, 2, vec![create("/a", "x", false, false)], false)[0],
            ZkResult::Created(p, s) if p == "/a" && s.czxid == zxid(Position::new(1, 2)))
        );
        assert_eq!(
            write(&mut t, 3, vec![create("/a", "x", false, false)], false),
            vec![ZkResult::Error(code::NODE_EXISTS)]
        );
        assert_eq!(
            write(&mut t, 4, vec![create("/no/b", "x", false, false)], false),
            vec![ZkResult::Error(code::NO_NODE)]
        );
        let set = |v| ZkWrite::SetData {
            path: "/a".into(),
            data: b"y".to_vec(),
            version: v,
        };
        assert_eq!(
            write(&mut t, 5, vec![set(3)], false),
            vec![ZkResult::Error(code::BAD_VERSION)]
        );
        assert!(
            matches!(write(&mut t, 6, vec![set(0)], false)[0], ZkResult::Stat(s) if s.version == 1)
        );
        let out = t.read(&ZkRead::GetData("/a".into()));
        assert!(
            matches!(&out.results[0], ZkResult::Data(d, s) if d == b"y" && s.mzxid == zxid(Position::new(1, 6)))
        );
        let root = t.read(&ZkRead::GetChildren("/".into()));
        assert!(
            matches!(&root.results[0], ZkResult::Children(c, s) if c == &["a"] && s.num_children == 1)
        );
    }

    #[test]
    fn sequential_names_count_the_parents_child_changes() {
        let mut t = tree();
        write(&mut t, 2, vec![create("/q", "", false, false)], false);
        let r = write(&mut t, 3, vec![create("/q/item-", "", false, true)], false);
        assert!(matches!(&r[0], ZkResult::Created(p, _) if p == "/q/item-0000000000"));
        let r = write(&mut t, 4, vec![create("/q/item-", "", false, true)], false);
        assert!(matches!(&r[0], ZkResult::Created(p, _) if p == "/q/item-0000000001"));
    }

    #[test]
    fn ephemerals_die_with_their_session_and_have_no_children() {
        let mut t = tree();
        write(&mut t, 2, vec![create("/e", "", true, false)], false);
        assert_eq!(
            write(&mut t, 3, vec![create("/e/c", "", false, false)], false),
            vec![ZkResult::Error(code::NO_CHILDREN_FOR_EPHEMERALS)]
        );
        t.apply(Position::new(1, 4), &ZkTxn::CloseSession { id: 7 });
        assert_eq!(
            t.read(&ZkRead::Exists("/e".into())).results,
            vec![ZkResult::Error(code::NO_NODE)]
        );
        assert_eq!(
            write(&mut t, 5, vec![create("/f", "", false, false)], false),
            vec![ZkResult::Error(code::SESSION_EXPIRED)]
        );
    }

    #[test]
    fn a_failed_multi_changes_nothing() {
        let mut t = tree();
        write(&mut t, 2, vec![create("/a", "", false, false)], false);
        let before = t.clone();
        let r = write(
            &mut t,
            3,
            vec![
                create("/b", "", false, false),
                ZkWrite::Delete {
                    path: "/a".into(),
                    version: -1,
                },
                ZkWrite::Check {
                    path: "/b".into(),
                    version: 5,
                },
                create("/c", "", false, false),
            ],
            true,
        );
        assert_eq!(
            r,
            vec![
                ZkResult::Error(code::OK),
                ZkResult::Error(code::OK),
                ZkResult::Error(code::BAD_VERSION),
                ZkResult::Error(code::RUNTIME_INCONSISTENCY)
            ]
        );
        // Only the last zxid moved: a failed multi is still a transaction.
        assert_eq!(
            (&t.nodes, &t.ephemerals),
            (&before.nodes, &before.ephemerals)
        );
    }

    #[test]
    fn a_failed_multi_restores_ephemerals_and_parents() {
        let mut t = tree();
        write(&mut t, 2, vec![create("/p", "", false, false)], false);
        write(&mut t, 3, vec![create("/p/e", "x", true, false)], false);
        let before = t.clone();
        let r = write(
            &mut t,
            4,
            vec![
                ZkWrite::Delete {
                    path: "/p/e".into(),
                    version: -1,
                },
                create("/p/e2", "", true, false),
                ZkWrite::SetData {
                    path: "/p".into(),
                    data: b"new".to_vec(),
                    version: -1,
                },
                create("/missing/x", "", false, false),
            ],
            true,
        );
        assert_eq!(r[3], ZkResult::Error(code::NO_NODE));
        // Only the last zxid moved: a failed multi is still a transaction.
        assert_eq!(
            (&t.nodes, &t.ephemerals),
            (&before.nodes, &before.ephemerals)
        );
        // The restored ephemeral still dies with its session.
        t.apply(Position::new(1, 5), &ZkTxn::CloseSession { id: 7 });
        assert_eq!(
            t.read(&ZkRead::Exists("/p/e".into())).results,
            vec![ZkResult::Error(code::NO_NODE)]
        );
    }

    #[test]
    fn paths_follow_zookeepers_rules() {
        for good in ["/", "/a", "/a/b-1", "/zookeeper"] {
            assert!(valid_path(good), "{good}");
        }
        for bad in ["", "a", "/a/", "//a", "/a/./b", "/a/..", "/a\0"] {
            assert!(!valid_path(bad), "{bad:?}");
        }
    }
}
