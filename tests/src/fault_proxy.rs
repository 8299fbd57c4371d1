//! An HTTP-aware relay between occcd and the Docker engine that injects
//! faults into chosen requests: answer 500 (a number of times, optionally
//! only after another request was seen), or never answer (until cleared).
//!
//! Invariant: a request no rule matches is relayed unchanged, and so is
//! every response; a faulted request is never seen by the engine; a request
//! with a body the relay cannot frame (chunked) ends parsing for that
//! connection, which is then relayed raw.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
    sync::Mutex as AsyncMutex,
    task::JoinHandle,
};

/// What a rule does to the request it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer `500 Internal Server Error` (the engine never sees it).
    Fail,
    /// Never answer (the connection stays open).
    Hang,
}

#[derive(Debug, Clone)]
struct Rule {
    method: String,
    path_contains: String,
    fault: Fault,
    /// How many more requests it applies to (`None`: until cleared).
    remaining: Option<u32>,
    /// Applies only once a request matching (method, path part) was seen.
    after: Option<(String, String)>,
    armed: bool,
}

/// The shared rule list, and what was faulted.
#[derive(Debug, Default)]
struct Rules {
    rules: Vec<Rule>,
    faulted: Vec<String>,
}

impl Rules {
    /// The fault for `method path`, if any (counting it down).
    fn decide(&mut self, method: &str, path: &str) -> Option<Fault> {
        for rule in &mut self.rules {
            if let Some((after_method, after_path)) = &rule.after
                && method == after_method
                && path.contains(after_path.as_str())
            {
                rule.armed = true;
            }
        }
        let found = self.rules.iter_mut().find(|rule| {
            rule.armed
                && rule.remaining != Some(0)
                && rule.method == method
                && path.contains(rule.path_contains.as_str())
        })?;
        if let Some(left) = &mut found.remaining {
            *left -= 1;
        }
        let fault = found.fault;
        self.faulted.push(format!("{method} {path}"));
        Some(fault)
    }
}

/// The relay.
#[derive(Debug)]
pub struct FaultProxy {
    path: PathBuf,
    rules: Arc<Mutex<Rules>>,
    task: JoinHandle<()>,
}

const INJECTED: &str = "{\"message\":\"fault injected by the test relay\"}";

impl FaultProxy {
    /// Listens at `path`, relaying to the engine at `target`.
    pub fn start(path: &Path, target: &Path) -> Self {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).expect("bind relay socket");
        let rules = Arc::new(Mutex::new(Rules::default()));
        let (shared, target) = (Arc::clone(&rules), target.to_owned());
        let task = tokio::spawn(async move {
            let mut relays = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let (rules, target) = (Arc::clone(&shared), target.clone());
                relays.spawn(async move {
                    if let Ok(engine) = UnixStream::connect(&target).await {
                        relay(client, engine, rules).await;
                    }
                });
            }
        });
        Self {
            path: path.to_owned(),
            rules,
            task,
        }
    }

    /// The socket occcd should use.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn add(
        &self,
        method: &str,
        path_contains: &str,
        fault: Fault,
        times: Option<u32>,
        after: Option<(&str, &str)>,
    ) {
        let mut rules = self.rules.lock().expect("rules");
        rules.rules.push(Rule {
            method: method.to_owned(),
            path_contains: path_contains.to_owned(),
            fault,
            remaining: times,
            after: after.map(|(m, p)| (m.to_owned(), p.to_owned())),
            armed: after.is_none(),
        });
    }

    /// Answers 500 to the next `times` requests `method` whose path contains
    /// `path_contains`.
    pub fn fail(&self, method: &str, path_contains: &str, times: u32) {
        self.add(method, path_contains, Fault::Fail, Some(times), None);
    }

    /// The same, counting only from the first request matching `after`.
    pub fn fail_after(&self, method: &str, path_contains: &str, times: u32, after: (&str, &str)) {
        self.add(method, path_contains, Fault::Fail, Some(times), Some(after));
    }

    /// Never answers requests `method` whose path contains `path_contains`.
    pub fn hang(&self, method: &str, path_contains: &str) {
        self.add(method, path_contains, Fault::Hang, None, None);
    }

    /// Removes every rule (requests already hung stay hung).
    pub fn clear(&self) {
        self.rules.lock().expect("rules").rules.clear();
    }

    /// The requests faulted so far, as "METHOD path".
    #[must_use]
    pub fn faulted(&self) -> Vec<String> {
        self.rules.lock().expect("rules").faulted.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn relay(client: UnixStream, engine: UnixStream, rules: Arc<Mutex<Rules>>) {
    let (client_read, client_write) = client.into_split();
    let (mut engine_read, mut engine_write) = engine.into_split();
    let client_write = Arc::new(AsyncMutex::new(client_write));
    let back = Arc::clone(&client_write);
    let responses = tokio::spawn(async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let Ok(read) = engine_read.read(&mut buffer).await else {
                return;
            };
            if read == 0 {
                return;
            }
            if back.lock().await.write_all(&buffer[..read]).await.is_err() {
                return;
            }
        }
    });
    let mut requests = BufReader::new(client_read);
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = Vec::new();
            match requests.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => {
                    responses.abort();
                    return;
                }
                Ok(_) => {}
            }
            let end = line == b"\r\n";
            head.extend_from_slice(&line);
            if end {
                break;
            }
        }
        let text = String::from_utf8_lossy(&head).to_string();
        let mut first = text.lines().next().unwrap_or_default().split_whitespace();
        let (method, path) = (
            first.next().unwrap_or_default(),
            first.next().unwrap_or_default(),
        );
        let header = |name: &str| {
            text.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_owned())
            })
        };
        if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            // Cannot frame it: relay the rest raw.
            let _ = engine_write.write_all(&head).await;
            let _ = tokio::io::copy(&mut requests, &mut engine_write).await;
            return;
        }
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        if requests.read_exact(&mut body).await.is_err() {
            responses.abort();
            return;
        }
        let decided = rules.lock().expect("rules").decide(method, path);
        match decided {
            None => {
                if engine_write.write_all(&head).await.is_err()
                    || engine_write.write_all(&body).await.is_err()
                {
                    return;
                }
            }
            Some(Fault::Fail) => {
                let answer = format!(
                    "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{INJECTED}",
                    INJECTED.len()
                );
                if client_write
                    .lock()
                    .await
                    .write_all(answer.as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Some(Fault::Hang) => {
                // Hold the connection; the client gives up on its own.
                std::future::pending::<()>().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_count_down_and_wait_for_their_trigger() {
        let mut rules = Rules::default();
        rules.rules.push(Rule {
            method: "GET".into(),
            path_contains: "/json".into(),
            fault: Fault::Fail,
            remaining: Some(1),
            after: Some(("POST".into(), "/pause".into())),
            armed: false,
        });
        assert_eq!(rules.decide("GET", "/v1.41/containers/gw/json"), None);
        assert_eq!(rules.decide("POST", "/v1.41/containers/gw/pause"), None);
        assert_eq!(
            rules.decide("GET", "/v1.41/containers/gw/json"),
            Some(Fault::Fail)
        );
        assert_eq!(rules.decide("GET", "/v1.41/containers/gw/json"), None);
    }
}
