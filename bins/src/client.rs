//! Running a client job against a server across attempts: connect (TCP or UDP), run the
//! agent, and on failure decide with [`crate::retry`] whether to try again — the same job after
//! a failed connect or a busy server, what is left of it after a dropped session (resume makes
//! that cheap: the receiver kept what arrived) — saying so at normal verbosity.

use std::sync::Arc;

use ferry_app::agent::{Agent, Job};
use ferry_disk::Store;
use proto::dgram::TransportConfig;
use proto::{Config, Psk};

use crate::cli::{Cli, Remote};
use crate::observer::{CliObserver, RunState, Shared, Side, lock};
use crate::output::Output;
use crate::retry::{self, Verdict};
use crate::run::Runtime;

/// A client session's settings without compression choices of its own.
pub(crate) fn client_config(compress: proto::Compression) -> Config {
    let mut c = Config::default();
    c.compression = compress;
    c
}

/// Where and how a client connects.
pub(crate) struct Dial<'a> {
    pub(crate) remote: &'a Remote,
    pub(crate) retries: u32,
    pub(crate) config: Config,
    /// `Some`: over UDP with these settings.
    pub(crate) udp: Option<TransportConfig>,
    /// `--bwlimit` in bytes per second (`None` or 0: none).
    pub(crate) bwlimit: Option<u64>,
}

impl<'a> Dial<'a> {
    pub(crate) fn new(
        remote: &'a Remote,
        retries: u32,
        config: Config,
        t: &crate::cli::TransportArgs,
    ) -> anyhow::Result<Self> {
        let udp = t.use_udp().map_err(anyhow::Error::msg)?;
        Ok(Dial {
            remote,
            retries,
            config,
            udp: udp.then(|| crate::transport::client_transport(t.cc)),
            bwlimit: None,
        })
    }
}

/// What a new attempt after a dropped session runs: `Ok(None)` when nothing is left.
pub(crate) type Remake<'r> = &'r mut dyn FnMut(&RunState) -> anyhow::Result<Option<Job>>;

/// One client command's runs against its server.
pub(crate) struct ClientRun<'a> {
    pub(crate) rt: &'a dyn Runtime,
    pub(crate) cli: &'a Cli,
    pub(crate) dial: &'a Dial<'a>,
    pub(crate) out: &'a Output,
    pub(crate) side: Side,
    pub(crate) state: Shared,
}

impl ClientRun<'_> {
    /// An agent for one attempt; it closes its session when the user interrupts.
    fn agent(&self, store: &Arc<dyn Store>, job: Job) -> Agent {
        let bucket = self.dial.bwlimit.filter(|r| *r > 0);
        let observer = Box::new(
            CliObserver::new(
                self.out,
                self.dial.remote,
                self.side.clone(),
                self.state.clone(),
            )
            .with_bwlimit(bucket.map(crate::bwlimit::Bucket::new)),
        );
        let mut agent = Agent::client(store.clone(), observer, job);
        agent.cancel_on(crate::signals::cancel_flag());
        agent
    }

    /// Run `job` with `store` to its end, retrying up to `--retries` times (see the module
    /// docs); `remake` gives the job of an attempt after a dropped session (`None`: the job
    /// cannot be replayed, e.g. standard input, so a dropped session is final).
    ///
    /// # Errors
    /// The last attempt's failure, as one line naming the peer, the phase and the fix.
    pub(crate) fn run(
        &self,
        store: &Arc<dyn Store>,
        job: Job,
        mut remake: Option<Remake<'_>>,
    ) -> anyhow::Result<()> {
        let psk = crate::run::psk_for_client(self.cli)?;
        let remote = self.dial.remote;
        let mut agent = self.agent(store, job);
        let mut tries = 0;
        loop {
            lock(&self.state).active = false;
            let result = self.attempt(&psk, &mut agent);
            if crate::signals::interrupted().is_some() {
                // Closed on purpose: nothing to retry or explain.
                return Ok(());
            }
            let started = lock(&self.state).active;
            let (e, verdict) = match result {
                Ok(()) if lock(&self.state).closed_early() => (
                    anyhow::anyhow!(
                        "{remote} closed the session before everything was done (the server \
                         may be stopping): rerun the same command to resume"
                    ),
                    Verdict::Dropped,
                ),
                Ok(()) => return Ok(()),
                Err(e) => {
                    let verdict = retry::classify(&e, started);
                    (e, verdict)
                }
            };
            let explain = |e: anyhow::Error| {
                let reason = crate::json::error_reason(&e);
                let e = retry::explain(e, remote, started, self.dial.config.handshake_timeout);
                crate::json::tagged(reason, e)
            };
            if verdict == Verdict::Final || tries >= self.dial.retries {
                return Err(explain(e));
            }
            if verdict == Verdict::Dropped {
                let Some(remake) = remake.as_mut() else {
                    return Err(explain(e));
                };
                let mut st = lock(&self.state);
                match remake(&st)? {
                    None => return Ok(()),
                    Some(job) => {
                        st.retrying();
                        drop(st);
                        agent = self.agent(store, job);
                    }
                }
            }
            // Connect and busy failures started nothing: the same agent tries again.
            tries += 1;
            self.out.info(retry::announce(
                &retry::what(verdict, remote),
                tries,
                self.dial.retries,
            ));
            std::thread::sleep(retry::delay(tries));
        }
    }

    fn attempt(&self, psk: &Psk, agent: &mut Agent) -> anyhow::Result<()> {
        let d = self.dial;
        match &d.udp {
            None => self.rt.run_client(d.remote, 0, &d.config, psk, agent),
            Some(t) => crate::transport::run_udp(self.rt, d.remote, 0, &d.config, t, psk, agent),
        }
    }
}
