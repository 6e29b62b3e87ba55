//! The process's resolver: hickory's, with its cache (TTLs, negative answers), pointed at
//! the configured servers or those of /etc/resolv.conf, and asked for plain answers: the
//! records as text, "no such record", or why it failed.

use super::{DnsConfig, DnsError};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// What a query gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The records of the type asked, as text: addresses dotted or colon form, a TXT
    /// record's strings joined, a name without its final dot.
    Found(Vec<String>),
    /// NXDOMAIN, or the name exists without records of that type: "not listed".
    NotFound,
    /// No usable answer: the rules that needed it do not fire.
    Failed(Failure),
}

/// Why a query gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Nothing came back in time (the query's timeout or the message's budget).
    Timeout,
    /// The server answered with an error (SERVFAIL, REFUSED ...), or garbage.
    Server(String),
}

/// One resolver for the process; cheap to clone (the cache is shared).
#[derive(Clone)]
pub struct Resolver {
    inner: TokioResolver,
    /// `[dns]` as configured.
    pub cfg: DnsConfig,
}

/// `ip` or `ip:port` (IPv6 in brackets with a port) as a server address; port 53 by default.
pub fn server_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let bare = s.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("{s:?} is not an address (ip or ip:port)"))
}

impl Resolver {
    /// The resolver `cfg` describes.
    pub fn new(cfg: &DnsConfig) -> Result<Resolver, DnsError> {
        let (config, opts) = settings(cfg)?;
        let inner = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(opts)
            .build()
            .map_err(|e| DnsError::Setup(e.to_string()))?;
        Ok(Resolver {
            inner,
            cfg: cfg.clone(),
        })
    }

    /// Asks `name` (absolute; a final dot is added) for records of `kind`.
    pub async fn query(&self, name: &str, kind: RecordType) -> Answer {
        let mut fqdn = name.trim_end_matches('.').to_string();
        fqdn.push('.');
        match self.inner.lookup(fqdn.as_str(), kind).await {
            Ok(lookup) => {
                let found: Vec<String> = lookup
                    .answers()
                    .iter()
                    .filter(|r| r.record_type() == kind)
                    .filter_map(|r| rdata_text(&r.data))
                    .collect();
                if found.is_empty() {
                    Answer::NotFound
                } else {
                    Answer::Found(found)
                }
            }
            Err(e) => failure(&e),
        }
    }
}

/// hickory's settings for `cfg`: its servers (or /etc/resolv.conf's), timeouts and cache.
/// DKIM, SPF and DMARC (mail-auth) ask the same servers with these.
pub fn settings(cfg: &DnsConfig) -> Result<(ResolverConfig, ResolverOpts), DnsError> {
    let (config, mut opts) = if cfg.servers.is_empty() {
        hickory_resolver::system_conf::read_system_conf()
            .map_err(|e| DnsError::Setup(format!("/etc/resolv.conf: {e}")))?
    } else {
        let servers = cfg
            .servers
            .iter()
            .map(|s| server_addr(s).map(name_server))
            .collect::<Result<Vec<_>, _>>()
            .map_err(DnsError::Setup)?;
        (
            ResolverConfig::from_parts(None, Vec::new(), servers),
            ResolverOpts::default(),
        )
    };
    // Two tries of half the time each: a lost UDP packet is retried within the timeout.
    opts.timeout = Duration::from_secs(cfg.query_timeout).div_f32(2.0);
    opts.attempts = 2;
    opts.cache_size = cfg.cache_size;
    // Every name we ask is absolute: no search domains, no /etc/hosts.
    opts.ndots = 0;
    opts.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
    // A truncated answer is asked again over TCP.
    opts.try_tcp_on_error = true;
    // The default (32 requests in flight) would queue a busy slot's lookups behind one
    // another: sessions x queries per message can be thousands.
    opts.max_active_requests = 4_096;
    // DNS blocklists answer with 127.0.0.x; the answers are data, not addresses to use.
    opts.allow_answers.clear();
    opts.deny_answers.clear();
    Ok((config, opts))
}

fn name_server(addr: SocketAddr) -> NameServerConfig {
    let mut udp = ConnectionConfig::udp();
    udp.port = addr.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = addr.port();
    NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
}

/// A record as SpamAssassin's rules read it.
fn rdata_text(data: &RData) -> Option<String> {
    Some(match data {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(a) => a.0.to_string(),
        RData::TXT(t) => t
            .txt_data
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
        RData::NS(n) => n.0.to_utf8().trim_end_matches('.').to_string(),
        RData::CNAME(n) => n.0.to_utf8().trim_end_matches('.').to_string(),
        RData::PTR(n) => n.0.to_utf8().trim_end_matches('.').to_string(),
        RData::MX(m) => m.exchange.to_utf8().trim_end_matches('.').to_string(),
        _ => return None,
    })
}

fn failure(e: &NetError) -> Answer {
    if e.is_no_records_found() {
        return Answer::NotFound;
    }
    match e {
        NetError::Timeout => Answer::Failed(Failure::Timeout),
        other => Answer::Failed(Failure::Server(other.to_string())),
    }
}
