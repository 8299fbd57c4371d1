//! The monitor's loop: connect to the engine (with backoff), sweep, follow
//! the event stream from the stored cursor, poll what has no events, and
//! go blind (`Unknown`) the moment the engine is lost.
//!
//! Invariant: the event cursor moves forward only after an event is
//! handled, so after a reconnect (or a daemon restart) the engine replays
//! every event it still holds that occcd did not handle; an event at or
//! before the cursor is never handled twice.

use std::{collections::HashMap, sync::Arc, time::Duration};

use tokio::{
    sync::{Mutex as AsyncMutex, mpsc, oneshot},
    task::JoinSet,
};
use tokio_stream::StreamExt;

use super::{
    engine::{Engine, EngineError},
    events::{self, EventMeaning},
    realtime,
    response::Responder,
    response::Trigger,
    shared::{Command, MonitorShared, Sight},
    sweeper::Sweeper,
};

/// First retry after the engine is lost; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often a live connection is proved with `_ping`.
const PING_EVERY: Duration = Duration::from_secs(2);
/// Longest one event's handling may keep the watch loop from going round
/// and still count as alive (for the service watchdog, see `tunables`).
const LONGEST_RESPONSE: Duration = Duration::from_secs(300);

/// The watch loop and what it starts: sweeps, the event stream, real-time
/// tree watches, re-isolation checks, and the responses findings call for.
#[derive(Debug)]
pub(super) struct Watcher {
    shared: Arc<MonitorShared>,
    responder: Arc<Responder>,
    /// Requests to the loop, taken when it starts.
    command_queue: AsyncMutex<Option<mpsc::Receiver<Command>>>,
    /// Sweeps the containers (in tasks the loop spawns).
    sweeper: Arc<Sweeper>,
}

impl Watcher {
    pub(super) fn new(
        shared: Arc<MonitorShared>,
        responder: Arc<Responder>,
        queue: mpsc::Receiver<Command>,
        names: &[String],
    ) -> Arc<Self> {
        let sweeper = Arc::new(Sweeper::new(
            Arc::clone(&shared),
            Arc::clone(&responder),
            names,
        ));
        Arc::new(Self {
            shared,
            responder,
            command_queue: AsyncMutex::new(Some(queue)),
            sweeper,
        })
    }

    /// Runs until the daemon stops.
    pub async fn run(self: Arc<Self>) {
        let Some(mut commands) = self.command_queue.lock().await.take() else {
            return;
        };
        // Beside the loop, so nothing the loop waits for can silence it.
        let watchdog = tokio::spawn(Arc::clone(&self).watch_staleness());
        let _stop_watchdog = AbortOnDrop(watchdog);
        let mut backoff = FIRST_BACKOFF;
        loop {
            self.shared.heartbeat.beat(self.shared.clock.now());
            match Engine::connect(&self.shared.config.docker_socket).await {
                Ok(engine) => {
                    backoff = FIRST_BACKOFF;
                    tracing::info!(api = engine.api_version(), "container engine connected");
                    self.shared.set_engine(Some(engine.clone()));
                    let lost = self.follow(&engine, &mut commands).await;
                    self.shared.set_engine(None);
                    tracing::warn!(error = %lost, "container engine lost");
                    self.shared.blind(&lost.to_string());
                }
                Err(err) => {
                    self.shared.blind(&err.to_string());
                    // Answer RunChecks while blind, then wait (a real wait:
                    // reconnection backoff).
                    #[allow(clippy::disallowed_methods)]
                    let wait = tokio::time::sleep(backoff);
                    tokio::pin!(wait);
                    loop {
                        self.shared.heartbeat.beat(self.shared.clock.now());
                        tokio::select! {
                            () = &mut wait => break,
                            command = commands.recv() => match command {
                                Some(Command::RunNow(reply)) => { let _ = reply.send(()); }
                                None => return,
                            },
                        }
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Runs `work` (an event's handling: a quarantine with its evidence can
    /// take minutes against a slow engine) while beating the heartbeat for
    /// at most [`LONGEST_RESPONSE`]; past that the loop counts as wedged.
    async fn beating<T>(&self, work: impl Future<Output = T>) -> T {
        let started = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        tokio::pin!(work);
        loop {
            tokio::select! {
                done = &mut work => return done,
                _ = tick.tick() => {
                    if started.elapsed() < LONGEST_RESPONSE {
                        self.shared.heartbeat.beat(self.shared.clock.now());
                    }
                }
            }
        }
    }

    /// Marks containers without a recent complete check `Unknown`, forever.
    async fn watch_staleness(self: Arc<Self>) {
        let started = self.shared.clock.now();
        let mut tuned = self.shared.tunables.subscribe();
        let mut tick = tokio::time::interval(self.shared.tunables().poll_interval() / 4);
        loop {
            tokio::select! {
                _ = tick.tick() => self.shared.mark_stale(started),
                Ok(()) = tuned.changed() => {
                    tick = tokio::time::interval(self.shared.tunables().poll_interval() / 4);
                }
            }
        }
    }

    /// Follows one engine connection until it is lost.
    async fn follow(&self, engine: &Engine, commands: &mut mpsc::Receiver<Command>) -> EngineError {
        let mut cursor = match self.shared.store.event_cursor().await {
            Ok(Some(cursor)) => cursor,
            _ => self.shared.clock.now().0.saturating_mul(1_000_000),
        };
        let mut stream = Box::pin(
            engine
                .docker()
                .events(Some(events::stream_options(Some(cursor)))),
        );
        // Sweeps run beside the event loop (a wedged container must not delay
        // the response to another's events) and die with this connection, so
        // no late sweep reports what a lost engine showed.
        let mut sweeps = JoinSet::new();
        self.spawn_sweep(&mut sweeps, engine, true, None);
        // Real-time drift: asks for a sweep of one container, beside the
        // polls (and dropped with this connection).
        let (asks, mut asked) = mpsc::channel::<String>(8);
        let mut live: HashMap<String, realtime::TreeWatch> = HashMap::new();
        let mut quick = JoinSet::new();
        // Whatever happened while no engine connection was followed (a
        // re-check given up with the last one included): each quarantine
        // is checked now, not a poll interval later.
        self.spawn_reisolation(&mut quick, engine, "engine connection (re)established");
        let mut tuned = self.shared.tunables.subscribe();
        let mut poll = tokio::time::interval(self.shared.tunables().poll_interval());
        poll.reset();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.reset();
        loop {
            // Goes round at least every poll and ping interval.
            self.shared.heartbeat.beat(self.shared.clock.now());
            tokio::select! {
                Ok(()) = tuned.changed() => {
                    poll = tokio::time::interval(self.shared.tunables().poll_interval());
                    poll.reset();
                }
                event = stream.next() => match event {
                    Some(Ok(event)) => {
                        let nanos = events::event_nanos(&event).unwrap_or(0);
                        if nanos > cursor {
                            let arrived = std::time::Instant::now();
                            let handled = self.handle_event(engine, &event, arrived, &mut quick);
                            self.beating(handled).await;
                            cursor = nanos;
                            if let Err(err) = self.shared.store.advance_event_cursor(nanos).await {
                                tracing::error!(error = %err, "event cursor not stored");
                            }
                        }
                    }
                    Some(Err(err)) => return EngineError::from(err),
                    None => return EngineError::Unreachable("the event stream ended".to_owned()),
                },
                _ = poll.tick() => {
                    if sweeps.is_empty() {
                        self.spawn_sweep(&mut sweeps, engine, false, None);
                    }
                    self.spawn_reisolation(&mut quick, engine, "periodic check");
                    self.reconcile_watches(&mut live, &asks);
                }
                Some(_) = sweeps.join_next(), if !sweeps.is_empty() => {
                    self.reconcile_watches(&mut live, &asks);
                }
                Some(name) = asked.recv() => self.spawn_sweep_of(&mut quick, engine, &name),
                Some(_) = quick.join_next(), if !quick.is_empty() => {}
                _ = ping.tick() => {
                    match tokio::time::timeout(PING_EVERY, engine.docker().ping()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(err)) => return EngineError::from(err),
                        Err(_) => return EngineError::Unreachable("the engine stopped answering".to_owned()),
                    }
                }
                command = commands.recv() => match command {
                    Some(Command::RunNow(reply)) => {
                        self.spawn_sweep(&mut sweeps, engine, true, Some(reply));
                    }
                    None => return EngineError::Unreachable("the daemon is stopping".to_owned()),
                },
            }
        }
    }

    /// Starts a check of every quarantined container's isolation: one
    /// inspect each, and a fix of whatever is undone (verified or not).
    fn spawn_reisolation(&self, tasks: &mut JoinSet<()>, engine: &Engine, why_verified: &str) {
        let quarantined: Vec<(String, bool)> = self
            .shared
            .watched()
            .iter()
            .filter_map(|(name, entry)| {
                let quarantine = entry.status.quarantine.as_ref()?;
                Some((name.clone(), quarantine.verified()))
            })
            .collect();
        for (name, verified) in quarantined {
            let why = if verified {
                why_verified
            } else {
                "isolation not verified yet"
            };
            self.spawn_reisolate(tasks, engine, &name, why.to_owned());
        }
    }

    /// Starts a check (and fix) of quarantined `name`'s isolation, unless
    /// one is already running (which then runs once more): at most one per
    /// container at a time.
    fn spawn_reisolate(&self, tasks: &mut JoinSet<()>, engine: &Engine, name: &str, why: String) {
        // One check per container at a time; a reason given meanwhile makes
        // it run once more (never dropped: it may have come after the last
        // inspect of the running one).
        if !self.responder.reisolating().begin(name, why.clone()) {
            return;
        }
        // Made before the task: dropping the task before it first runs
        // (the connection lost) still gives the check up.
        let mut running = Reisolating {
            responder: Arc::clone(&self.responder),
            name: name.to_owned(),
            over: false,
        };
        let engine = engine.clone();
        tasks.spawn(async move {
            let responder = Arc::clone(&running.responder);
            let name = running.name.clone();
            responder
                .reisolating()
                .run(&name, why, |why| {
                    let (responder, engine, name) =
                        (Arc::clone(&responder), engine.clone(), name.clone());
                    async move { responder.reisolate(&engine, &name, &why).await }
                })
                .await;
            running.finished();
        });
    }

    /// Watches the writable trees each container's latest sweep named (and
    /// stops watching what it no longer names).
    fn reconcile_watches(
        &self,
        live: &mut HashMap<String, realtime::TreeWatch>,
        asks: &mpsc::Sender<String>,
    ) {
        let wanted: Vec<(String, Vec<std::path::PathBuf>)> = self
            .shared
            .watched()
            .iter()
            .map(|(name, entry)| (name.clone(), entry.watch_roots.clone()))
            .collect();
        for (name, roots) in wanted {
            if roots.is_empty() {
                live.remove(&name);
                continue;
            }
            if live.get(&name).is_some_and(|watch| watch.roots() == roots) {
                continue;
            }
            match realtime::watch(&name, roots, asks.clone()) {
                Some(watch) => {
                    live.insert(name, watch);
                }
                None => {
                    live.remove(&name);
                }
            }
        }
    }

    /// Starts a sweep of container `name` (a real-time ask).
    fn spawn_sweep_of(&self, sweeps: &mut JoinSet<()>, engine: &Engine, name: &str) {
        let sweeper = Arc::clone(&self.sweeper);
        let Some(profile) = self.shared.config.profile(name).cloned() else {
            return;
        };
        let engine = engine.clone();
        sweeps.spawn(async move {
            sweeper.sweep_one(&engine, &profile, false).await;
        });
    }

    /// Starts a sweep of every container in `sweeps`; answers `reply` when done.
    fn spawn_sweep(
        &self,
        sweeps: &mut JoinSet<()>,
        engine: &Engine,
        force_hashes: bool,
        reply: Option<oneshot::Sender<()>>,
    ) {
        let sweeper = Arc::clone(&self.sweeper);
        let engine = engine.clone();
        sweeps.spawn(async move {
            sweeper.sweep_all(&engine, force_hashes).await;
            if let Some(reply) = reply {
                let _ = reply.send(());
            }
        });
    }

    /// Handles one engine event; what takes long (sweeps, re-isolation)
    /// goes to `tasks`, so the next event is not kept waiting.
    async fn handle_event(
        &self,
        engine: &Engine,
        event: &bollard::models::EventMessage,
        arrived: std::time::Instant,
        tasks: &mut JoinSet<()>,
    ) {
        if let Some((name, network)) = self.reconnected_in_quarantine(event) {
            let finding = events::reconnected(&name, &network, event, self.shared.clock.now());
            let finding = self.shared.open_event(finding);
            self.shared.keep_open(&name, finding.check_id).await;
            self.shared
                .publish_findings(std::slice::from_ref(&finding))
                .await;
            self.spawn_reisolate(tasks, engine, &name, format!("network {network} connected"));
            return;
        }
        let Some(name) = events::container_name(event) else {
            return;
        };
        let Some(profile) = self
            .shared
            .config
            .containers
            .iter()
            .find(|p| p.name == name)
        else {
            return;
        };
        let (quarantined, in_quarantine) = {
            let mut watched = self.shared.watched();
            let Some(entry) = watched.get_mut(&name) else {
                return;
            };
            if entry.recent_events.len() >= super::shared::RECENT_EVENTS {
                entry.recent_events.pop_front();
            }
            entry
                .recent_events
                .push_back(serde_json::to_value(event).unwrap_or_default());
            let acting = entry
                .occcd_acting_until
                .is_some_and(|until| self.shared.clock.now() <= until);
            let in_quarantine = entry.status.quarantine.is_some();
            (in_quarantine || acting, in_quarantine)
        };
        if in_quarantine && events::may_undo_isolation(event) {
            let action = event.action.clone().unwrap_or_default();
            self.spawn_reisolate(tasks, engine, &name, format!("{action} during quarantine"));
        }
        match events::classify(event, &name, quarantined, self.shared.clock.now()) {
            EventMeaning::Finding(finding) => {
                let finding = self.shared.open_event(finding);
                let trigger = Trigger {
                    since: arrived,
                    exec_id: events::exec_id(event),
                };
                // Respond first: the findings can wait a few ms.
                self.responder
                    .respond(engine, profile, std::slice::from_ref(&finding), &trigger)
                    .await;
                self.shared.keep_open(&name, finding.check_id).await;
                self.shared
                    .publish_findings(std::slice::from_ref(&finding))
                    .await;
                self.shared.refresh(&name, Sight::Same);
            }
            EventMeaning::Recheck => self.spawn_sweep_of(tasks, engine, &name),
            EventMeaning::Removed => {
                self.shared.refresh(
                    &name,
                    Sight::Blind(&format!("container {name} was removed")),
                );
            }
            EventMeaning::Ignore => {}
        }
    }

    /// The (container, network) of a network connect event about a
    /// quarantined container, if this is one.
    fn reconnected_in_quarantine(
        &self,
        event: &bollard::models::EventMessage,
    ) -> Option<(String, String)> {
        let (container_id, network) = events::network_connect(event)?;
        let watched = self.shared.watched();
        watched.iter().find_map(|(name, entry)| {
            let id = entry.known.as_ref().map(|known| known.id.as_str())?;
            let same = !id.is_empty() && (id == container_id || id.starts_with(&container_id));
            (same && entry.status.quarantine.is_some()).then(|| (name.clone(), network.clone()))
        })
    }
}

/// A running re-check: given up if its task ends (or is dropped unrun)
/// before it was over.
struct Reisolating {
    responder: Arc<Responder>,
    name: String,
    over: bool,
}

impl Reisolating {
    /// The check is over ([`super::rechecks::Rechecks::run`] returned).
    fn finished(&mut self) {
        self.over = true;
    }
}

impl Drop for Reisolating {
    fn drop(&mut self) {
        if !self.over {
            self.responder.reisolating().abandon(&self.name);
        }
    }
}

/// Aborts a task when dropped (the watchdog ends with the loop).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
