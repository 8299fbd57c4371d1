//! Asking a person at the terminal: secrets without echo, new passwords
//! twice, and a spinner while something slow (Argon2, a brute-force delay)
//! runs.
//!
//! Invariant: secrets are read into zeroized buffers and never echoed; the
//! spinner writes only to a terminal on stderr, so piped output stays clean.

use std::{
    future::Future,
    io::{BufRead, IsTerminal, Write},
    time::Duration,
};

use occc_client::ClientError;
use zeroize::Zeroizing;

/// Tries a person gets for a new password that must be typed twice.
const NEW_PASSWORD_TRIES: usize = 3;

fn read_error(prompt: &str, err: &std::io::Error) -> ClientError {
    ClientError::Input(format!("cannot read {prompt}: {err}"))
}

/// Reads a secret: from stdin when asked to or when stdin is not a terminal
/// (a script answering), else at a hidden prompt.
pub fn secret(prompt: &str, from_stdin: bool) -> Result<Zeroizing<String>, ClientError> {
    if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|err| read_error(prompt, &err))?;
        Ok(Zeroizing::new(
            line.trim_end_matches(['\r', '\n']).to_owned(),
        ))
    } else {
        rpassword::prompt_password(format!("{prompt}: "))
            .map(Zeroizing::new)
            .map_err(|err| read_error(prompt, &err))
    }
}

/// Reads a visible line.
pub fn line(prompt: &str) -> Result<String, ClientError> {
    eprint!("{prompt}: ");
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|err| read_error(prompt, &err))?;
    Ok(answer.trim().to_owned())
}

/// A new password: typed twice at a prompt (asked again when the two
/// differ), or read once from stdin.
pub fn new_password(from_stdin: bool) -> Result<Zeroizing<String>, ClientError> {
    if from_stdin {
        return secret("new password", true);
    }
    // Not --password-stdin: typed twice, even when a script answers on stdin.
    for _ in 0..NEW_PASSWORD_TRIES {
        let first = secret("new password (12+ characters)", false)?;
        let again = secret("the same password again", false)?;
        if first == again {
            return Ok(first);
        }
        eprintln!("the two passwords differ; once more");
    }
    Err(ClientError::Input(format!(
        "the passwords differed {NEW_PASSWORD_TRIES} times; nothing was changed"
    )))
}

/// Runs `work`, showing `message` and a spinner on a terminal meanwhile.
pub async fn with_spinner<T>(message: &str, work: impl Future<Output = T>) -> T {
    if !std::io::stderr().is_terminal() {
        return work.await;
    }
    let mut work = std::pin::pin!(work);
    let mut ticks = tokio::time::interval(Duration::from_millis(120));
    let frames = ['|', '/', '-', '\\'];
    let mut frame = 0;
    let result = loop {
        tokio::select! {
            result = &mut work => break result,
            _ = ticks.tick() => {
                eprint!("\r{} {message}", frames[frame % frames.len()]);
                let _ = std::io::stderr().flush();
                frame += 1;
            }
        }
    };
    eprint!("\r{}\r", " ".repeat(message.chars().count() + 2));
    result
}
