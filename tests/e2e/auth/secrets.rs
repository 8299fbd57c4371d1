//! No password, code, token, secret or hash in the logs, and none in the
//! database file — not even in the decrypted rows where only hashes or
//! sealed values belong.

use std::fs;

use occc_client::proto as pb;
use occc_tests::{
    DevDir, RunningDaemon,
    people::{GOOD_PASSWORD, bootstrap_super_admin, bootstrap_token, elevate, invite, log_in},
    receivers::{Rsyslog, WebhookReceiver, await_received},
};

#[tokio::test]
async fn planted_secrets_appear_in_no_log_and_no_database_byte() {
    let dir = DevDir::new();
    // Every event goes out to rsyslog and a webhook: what they receive is
    // scanned too, and the webhook's signing secret is one more plant.
    let rsyslog = Rsyslog::start(None);
    let signing_secret = "webhook-signing-secret-0b9e7c41d2a85f36";
    let secret_file = dir.path().join("webhook.secret");
    let webhook = WebhookReceiver::start(signing_secret, &secret_file);
    dir.set_config(&format!(
        "[events.syslog]\naddress = \"127.0.0.1:{}\"\n[events.webhook]\nurl = {:?}\nsecret_file = {:?}\n",
        rsyslog.port,
        webhook.url,
        secret_file.display().to_string()
    ));
    let daemon = RunningDaemon::start_with_log_filter(&dir, "trace").await;
    let anonymous = daemon.client().await;
    let mut planted: Vec<String> = vec![
        bootstrap_token(&dir),
        GOOD_PASSWORD.to_owned(),
        signing_secret.to_owned(),
    ];

    let mut root = bootstrap_super_admin(&dir, &anonymous, "root").await;
    planted.extend(root.recovery_codes.iter().cloned());
    planted.push(root.device.secret().to_owned());
    let admin = log_in(&anonymous, &mut root).await;
    planted.push(root.device.replay_last());
    planted.push(admin.session().unwrap().expose().to_owned());
    elevate(&admin, &mut root).await;
    planted.push(root.device.replay_last());

    let created = admin
        .users()
        .create_user(pb::CreateUserRequest {
            username: "carol".into(),
            role: pb::UserRole::Operator.into(),
        })
        .await
        .unwrap()
        .into_inner();
    planted.push(created.enrollment_token.clone());
    let carol = invite(&admin, &anonymous, "dave", pb::UserRole::Viewer).await;
    planted.extend(carol.recovery_codes.iter().cloned());
    planted.push(carol.device.secret().to_owned());
    let new_password = "copper-lantern-meadow-41";
    elevate(&admin, &mut root).await;
    planted.push(root.device.replay_last());
    admin
        .auth()
        .change_password(pb::ChangePasswordRequest {
            current_password: GOOD_PASSWORD.into(),
            new_password: new_password.into(),
        })
        .await
        .unwrap();
    planted.push(new_password.to_owned());
    // A wrong password and a wrong code are typed secrets too.
    let mistyped = "mistyped-but-close-password-17";
    assert!(
        anonymous
            .auth()
            .login(pb::LoginRequest {
                username: "root".into(),
                password: mistyped.into(),
                second_factor: Some(pb::login_request::SecondFactor::TotpCode("000000".into())),
            })
            .await
            .is_err()
    );
    planted.push(mistyped.to_owned());
    // The receivers have every entry up to the last one (the failed login).
    let received_all = |text: &str| text.contains("\"event\":\"login_failed\"");
    let syslog_text = await_received(|| rsyslog.received(), received_all, "rsyslog").await;
    let webhook_text = await_received(|| webhook.received(), received_all, "webhook").await;
    assert!(
        webhook_text.contains("\"event\":\"password_changed\""),
        "{webhook_text}"
    );

    // The master key and the database key sqlx hands SQLCipher (`PRAGMA
    // key`, the first statement on every connection) are secrets too.
    let master = fs::read_to_string(dir.key_file()).unwrap();
    planted.push(master.trim().to_owned());
    let unlocked = occcd::lifecycle::open_store(&dir.config()).await.unwrap();
    let database_key = unlocked.keys.derive(occcd::crypto::KeyPurpose::Database);
    planted.push(hex::encode(database_key.expose()));
    unlocked.store.close().await;

    // The stored hashes are secrets too: read them through the key.
    let (store, _) = dir.open_store().await;
    let stored: Vec<(Option<String>,)> = sqlx::query_as("SELECT password_phc FROM users")
        .fetch_all(store.raw_pool())
        .await
        .unwrap();
    let hashes: Vec<String> = stored.into_iter().filter_map(|(phc,)| phc).collect();
    assert!(
        hashes.iter().all(|h| h.starts_with("$argon2id$")),
        "{hashes:?}"
    );
    // Hashes belong in the decrypted users table, and nowhere else.
    let hash_digests: Vec<String> = hashes
        .iter()
        .map(|h| h.rsplit('$').next().unwrap().to_owned())
        .collect();

    let log = dir.log();
    assert!(
        log.contains("DEBUG occcd"),
        "trace logging produced output: {log}"
    );
    for secret in planted.iter().chain(&hash_digests) {
        assert!(
            !log.contains(secret.as_str()),
            "secret in the log: {secret}"
        );
    }
    assert!(!log.contains("$argon2id$"), "a password hash in the log");
    for (receiver, text) in [("rsyslog", &syslog_text), ("webhook", &webhook_text)] {
        for secret in planted.iter().chain(&hash_digests) {
            assert!(
                !text.contains(secret.as_str()),
                "secret sent to {receiver}: {secret}"
            );
        }
        assert!(
            !text.contains("$argon2id$"),
            "a password hash sent to {receiver}"
        );
    }

    // Raw bytes on disk: nothing planted (the file is encrypted).
    for name in ["occcd.db", "occcd.db-wal", "occcd.db-shm"] {
        let Ok(bytes) = fs::read(dir.path().join("state").join(name)) else {
            continue;
        };
        for secret in planted.iter().chain(&hash_digests) {
            let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!found, "{secret} in plaintext in {name}");
        }
    }
    // Decrypted rows: tokens, codes and TOTP secrets only as hashes or sealed.
    let dump: Vec<(String,)> = sqlx::query_as(
        "SELECT quote(username) || quote(password_phc) || quote(totp_secret) || quote(totp_pending_secret) \
         || quote(enrollment_token_hash) FROM users UNION ALL SELECT quote(code_hash) FROM recovery_codes \
         UNION ALL SELECT quote(token_hash) || quote(id) FROM sessions UNION ALL SELECT detail FROM audit_log",
    )
    .fetch_all(store.raw_pool())
    .await
    .unwrap();
    let dump: String = dump.into_iter().map(|(row,)| row).collect();
    for secret in &planted {
        let normalized = secret.replace('-', "");
        assert!(
            !dump.contains(secret.as_str()) && !dump.contains(&normalized),
            "{secret} stored readable"
        );
    }
}
