//! The real cluster's commands: `serve`, `cluster` and `load`.

use super::args::{ClusterArgs, LoadArgs, MemberAction, MemberArgs, ServeArgs, TortureArgs};
use anyhow::{bail, Context, Result};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

pub(super) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub(super) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Completes on Ctrl-C or SIGTERM.
pub(super) async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// `serve`: one real node.
pub(super) fn cmd_serve(a: ServeArgs) -> Result<ExitCode> {
    let cfg = match &a.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            toml::from_str::<crate::net::ServeConfig>(&text).map_err(|e| {
                // One line: where, and what (the TOML error draws the line with a caret).
                let line = e
                    .span()
                    .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
                anyhow::anyhow!(
                    "{} is not a valid config{}: {}",
                    path.display(),
                    line.map(|l| format!(" (line {l})")).unwrap_or_default(),
                    e.message()
                )
            })?
        }
        None => crate::net::ServeConfig {
            protocol: a.protocol,
            id: a.id.expect("required by clap"),
            peers: a.peers.expect("required by clap"),
            peer_http: a.peer_http.unwrap_or_default(),
            data_dir: a.data_dir.expect("required by clap"),
            http: a.http,
            cluster_id: a.cluster_id,
            redirect: a.redirect,
            join: a.join,
            snapshot_threshold: a.snapshot_threshold,
            etcd_listen: a.etcd_listen,
            zk_listen: a.zk_listen,
            tls: match (a.tls_ca, a.tls_cert, a.tls_key) {
                (Some(ca), Some(cert), Some(key)) => Some(crate::net::serve_config::ServeTls {
                    ca,
                    cert,
                    key,
                    client_certs: a.tls_client_certs,
                }),
                _ => None,
            },
        },
    };
    cfg.validate()?;
    init_logging();
    // tokio's multi-thread runtime, though one thread costs less CPU per write here: during
    // the fsync (block_in_place) the other worker puts the leader's early AppendEntries or
    // PROPOSALs on the wire, which one thread could do only after it (docs/performance.md).
    let rt = runtime()?;
    rt.block_on(crate::net::server::serve(cfg, stop_signal()))?;
    Ok(ExitCode::SUCCESS)
}

/// `cluster`: a local cluster of `serve` processes.
pub(super) fn cmd_cluster(a: ClusterArgs, out: &mut dyn Write) -> Result<ExitCode> {
    use crate::net::launch::{LaunchConfig, LocalCluster};
    let temp = match &a.data_dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("consensus-lab-")
                .tempdir()?,
        ),
    };
    let data_dir = a
        .data_dir
        .clone()
        .unwrap_or_else(|| temp.as_ref().expect("made above").path().to_path_buf());
    let cfg = LaunchConfig {
        protocol: a.protocol,
        nodes: a.nodes,
        spares: a.spares,
        peer_base: a.peer_base,
        http_base: a.http_base,
        data_dir,
        cluster_id: a.cluster_id,
        exe: std::env::current_exe().context("cannot find the consensus-lab binary")?,
        quiet: false,
        links: Default::default(),
        tls: a.tls,
        etcd_base: a.etcd_base,
        zk_base: a.zk_base,
    };
    for base in [Some(a.peer_base), Some(a.http_base), a.etcd_base, a.zk_base]
        .into_iter()
        .flatten()
    {
        if base as u64 + a.nodes + a.spares > u16::MAX as u64 {
            bail!(
                "a base port of {base} leaves no room for {} ports",
                a.nodes + a.spares
            );
        }
    }
    let rt = runtime()?;
    let mut cluster = LocalCluster::start(cfg.clone()).context("cannot start the nodes")?;
    outln!(
        out,
        "{} cluster of {}, data in {}",
        cfg.protocol.name(),
        crate::counted(cfg.nodes, "node"),
        cfg.data_dir.display()
    );
    for (id, pid) in cluster.pids() {
        outln!(
            out,
            "  node {id}: {}://{}  peer {}  pid {pid}{}",
            if cfg.tls { "https" } else { "http" },
            cfg.http_addr(id),
            cfg.peer_addr(id),
            if id > cfg.nodes {
                format!(
                    "  (spare: consensus-lab member add --id {id} --peer {} --http {})",
                    cfg.peer_addr(id),
                    cfg.http_addr(id)
                )
            } else {
                String::new()
            }
        );
        if let Some(a) = cfg.etcd_addr(id) {
            outln!(out, "          etcd {a}");
        }
        if let Some(a) = cfg.zk_addr(id) {
            outln!(out, "          zookeeper {a}");
        }
    }
    if cfg.tls {
        let dir = cfg.tls_dir();
        outln!(out,
            "try: curl --cacert {ca} --cert {dir}/client.pem --key {dir}/client.key -X PUT --data-binary hello https://{}/kv/greeting\n     consensus-lab load --endpoints {} --tls-ca {ca}\nCtrl-C stops every node.",
            cfg.http_addr(1),
            cfg.endpoints().join(","),
            ca = dir.join("ca.pem").display(),
            dir = dir.display(),
        );
    } else {
        outln!(out,
            "try: curl -X PUT --data-binary hello http://{}/kv/greeting -L\n     consensus-lab load --endpoints {}\nCtrl-C stops every node.",
            cfg.http_addr(1),
            cfg.endpoints().join(",")
        );
    }
    let restart = a.restart;
    let code = rt.block_on(async {
        let mut poll = tokio::time::interval(std::time::Duration::from_millis(200));
        let stop = stop_signal();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break ExitCode::SUCCESS,
                _ = poll.tick() => {
                    for (id, status) in cluster.exited() {
                        if restart {
                            match cluster.restart(id) {
                                Ok(pid) => eprintln!("node {id} exited ({status}); restarted it, pid {pid}"),
                                Err(e) => eprintln!("node {id} exited ({status}); cannot restart it: {e}"),
                            }
                        } else {
                            eprintln!(
                                "node {id} exited ({status}); the other {} keep running",
                                cluster.running()
                            );
                        }
                    }
                    if cluster.running() == 0 {
                        eprintln!("every node has exited");
                        break ExitCode::FAILURE;
                    }
                }
            }
        }
    });
    cluster.stop();
    outln!(out, "stopped {}", crate::counted(cfg.nodes, "node"));
    Ok(code)
}

/// `torture`: faults against a local cluster of real processes, then the checks.
pub(super) fn cmd_torture(a: TortureArgs, out: &mut dyn Write) -> Result<ExitCode> {
    if !(a.seconds > 0.0 && a.seconds <= 86_400.0) {
        bail!("--seconds must be more than 0 and at most 86400 (a day)");
    }
    let cfg = crate::net::torture::TortureConfig {
        protocol: a.protocol,
        nodes: a.nodes,
        duration: std::time::Duration::from_secs_f64(a.seconds),
        faults: {
            let mut f = a.faults;
            f.sort();
            f.dedup();
            f
        },
        seed: a.seed,
        clients: a.clients as usize,
        keys: a.keys as usize,
        exe: std::env::current_exe().context("cannot find the consensus-lab binary")?,
        data_dir: a.data_dir,
        rejoin_bound: std::time::Duration::from_millis(a.rejoin_bound_ms),
        progress: std::io::stderr().is_terminal(),
    };
    let rt = runtime()?;
    let report = rt.block_on(async {
        tokio::select! {
            r = crate::net::torture::run(cfg) => r,
            _ = stop_signal() => Err(anyhow::anyhow!("interrupted; every node was stopped")),
        }
    })?;
    if a.json {
        outln!(out, "{}", serde_json::to_string_pretty(&report)?);
    } else {
        let _ = write!(out, "{}", report.render());
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `load`: closed-loop load against a real cluster.
/// `member list`, `transfer`, `add`, `promote` and `remove`.
pub(super) fn cmd_member(a: MemberArgs, out: &mut dyn Write) -> Result<ExitCode> {
    use crate::net::server::{MembersBody, StatusBody};
    use bytes::Bytes;
    use hyper::{Method, StatusCode};
    let rt = runtime()?;
    rt.block_on(async {
        match a.action {
            MemberAction::List => {
                let mut found = None;
                for e in &a.endpoints {
                    let mut c = crate::net::Client::new(vec![e.clone()], 0);
                    if let Ok(r) = c
                        .call_once(Method::GET, "/cluster/members", Bytes::new())
                        .await
                    {
                        if r.status == StatusCode::OK {
                            found = serde_json::from_slice::<MembersBody>(&r.body).ok();
                            break;
                        }
                    }
                }
                let Some(m) = found else {
                    bail!("no node answered at {}", a.endpoints.join(", "));
                };
                outln!(out, "configuration: {}", m.configuration);
                outln!(
                    out,
                    "{:>4}  {:<21} {:<21} {:<8} {:<10} {:>6} {:>12} {:>12}",
                    "id",
                    "peer",
                    "http",
                    "member",
                    "role",
                    "era",
                    "commit",
                    "last"
                );
                for member in &m.members {
                    let status = match &member.http {
                        Some(h) => {
                            let mut c = crate::net::Client::new(vec![h.clone()], 0);
                            match c.call_once(Method::GET, "/status", Bytes::new()).await {
                                Ok(r) if r.status == StatusCode::OK => {
                                    serde_json::from_slice::<StatusBody>(&r.body).ok()
                                }
                                _ => None,
                            }
                        }
                        None => None,
                    };
                    let (role, era, commit, last) = match &status {
                        Some(s) => (
                            s.role_name.clone(),
                            s.era.to_string(),
                            format!("{:?}", s.commit),
                            format!("{:?}", s.last),
                        ),
                        None => ("unreachable".into(), "-".into(), "-".into(), "-".into()),
                    };
                    outln!(
                        out,
                        "{:>4}  {:<21} {:<21} {:<8} {:<10} {:>6} {:>12} {:>12}",
                        format!("n{}", member.id),
                        member.peer,
                        member.http.as_deref().unwrap_or("-"),
                        if member.voter { "voter" } else { "learner" },
                        role,
                        era,
                        commit,
                        last
                    );
                }
                match m.leader {
                    Some(l) => outln!(out, "leader: n{l} (as n{} sees it)", m.answered_by),
                    None => outln!(out, "no leader (as n{} sees it)", m.answered_by),
                }
                Ok(ExitCode::SUCCESS)
            }
            MemberAction::Add { .. }
            | MemberAction::Promote { .. }
            | MemberAction::Remove { .. } => {
                use crate::net::server::{ChangeAction, ChangeBody, ChangeItem};
                let (item, done) = match a.action {
                    MemberAction::Add {
                        id,
                        peer,
                        http,
                        voter,
                    } => (
                        ChangeItem {
                            action: if voter {
                                ChangeAction::AddVoter
                            } else {
                                ChangeAction::AddLearner
                            },
                            id,
                            peer: Some(peer),
                            http,
                        },
                        format!(
                            "n{id} added as a {}",
                            if voter { "voter" } else { "learner" }
                        ),
                    ),
                    MemberAction::Promote { id } => (
                        ChangeItem {
                            action: ChangeAction::AddVoter,
                            id,
                            peer: None,
                            http: None,
                        },
                        format!("n{id} is a voter"),
                    ),
                    MemberAction::Remove { id } => (
                        ChangeItem {
                            action: ChangeAction::Remove,
                            id,
                            peer: None,
                            http: None,
                        },
                        format!("n{id} removed"),
                    ),
                    _ => unreachable!("matched above"),
                };
                let body = Bytes::from(serde_json::to_vec(&ChangeBody {
                    changes: vec![item],
                })?);
                let mut c = crate::net::Client::new(a.endpoints.clone(), 0);
                let r = c
                    .call(Method::POST, "/cluster/members", body)
                    .await
                    .with_context(|| format!("no node answered at {}", a.endpoints.join(", ")))?;
                if r.status == StatusCode::OK {
                    let m: MembersBody = serde_json::from_slice(&r.body)?;
                    outln!(out, "{done}; configuration: {}", m.configuration);
                    Ok(ExitCode::SUCCESS)
                } else {
                    let v = r.json();
                    bail!(
                        "{}",
                        v["error"].as_str().unwrap_or("the change was refused")
                    )
                }
            }
            MemberAction::Transfer { to } => {
                let body = Bytes::from(format!("{{\"to\": {to}}}"));
                let mut c = crate::net::Client::new(a.endpoints.clone(), 0);
                let r = c
                    .call(Method::POST, "/cluster/transfer-leader", body)
                    .await
                    .with_context(|| format!("no node answered at {}", a.endpoints.join(", ")))?;
                let v = r.json();
                if r.status == StatusCode::OK {
                    outln!(out, "n{to} leads (era {})", v["era"]);
                    Ok(ExitCode::SUCCESS)
                } else {
                    bail!(
                        "{}",
                        v["error"].as_str().unwrap_or("the transfer was refused")
                    )
                }
            }
        }
    })
}

pub(super) fn cmd_load(a: LoadArgs, out: &mut dyn Write) -> Result<ExitCode> {
    if !(a.seconds > 0.0 && a.seconds <= 86_400.0) {
        bail!("--seconds must be more than 0 and at most 86400 (a day)");
    }
    if let Some(k) = a.kill_leader_at {
        if !(k >= 0.0 && k < a.seconds) {
            bail!("--kill-leader-at must be within the run (0 to --seconds)");
        }
    }
    let cfg = crate::net::LoadConfig {
        system: a.system,
        endpoints: a.endpoints,
        clients: a.clients as usize,
        duration: std::time::Duration::from_secs_f64(a.seconds),
        value_bytes: a.value_bytes as usize,
        read_fraction: a.reads,
        read_consistency: a.read_consistency,
        keys_per_client: a.keys,
        seed: a.seed,
        progress: std::io::stderr().is_terminal(),
        kill_leader_at: a.kill_leader_at.map(std::time::Duration::from_secs_f64),
        tls: match &a.tls_ca {
            Some(ca) => Some(consensus_node::tls::client_connector(
                ca,
                a.tls_cert.as_deref().zip(a.tls_key.as_deref()),
            )?),
            None => None,
        },
    };
    let report = runtime()?.block_on(crate::net::load::run_load(cfg))?;
    if let Some(path) = &a.plot {
        let svg = crate::report::load_svg(&report)?;
        std::fs::write(path, svg).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("plot written to {}", path.display());
    }
    if a.json {
        outln!(out, "{}", serde_json::to_string_pretty(&report)?);
    } else {
        let _ = write!(out, "{}", report.render());
    }
    Ok(if report.ops > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
