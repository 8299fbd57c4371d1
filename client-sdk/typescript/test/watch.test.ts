/**
 * Long-lived use: the integrity watch followed across a daemon restart, and
 * a config write that lost a race (Conflict with the current version), and
 * which errors reopen the watch.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { Metadata, status as Status } from "@grpc/grpc-js";

import { ConnectError, DENIAL_TRAILER, OcccError, toOcccError } from "../src/errors.js";
import { Conflict, OcccClient, Unauthenticated, watchIntegrity, type WatchEvent } from "../src/index.js";
import { reopensAfter } from "../src/watch.js";
import { bootstrap, Daemon, logIn, type Person } from "./support.js";

const CONTAINER = "openclaw-gateway";

function config(dir: string): string {
  writeFileSync(join(dir, "openclaw.json"), '{ gateway: { bind: "loopback" } }\n', { mode: 0o600 });
  return (
    `[integrity]\ndocker_socket = "${join(dir, "no-docker-here.sock")}"\n` +
    `[[integrity.containers]]\nname = "${CONTAINER}"\nopenclaw_config = "${join(dir, "openclaw.json")}"\n`
  );
}

/** Bootstraps "root" and logs a new client in as them. */
async function signedIn(daemon: Daemon): Promise<{ client: OcccClient; root: Person }> {
  const anonymous = await daemon.client();
  const root = await bootstrap(daemon, anonymous, "root");
  anonymous.close();
  const client = await daemon.client();
  await logIn(client, root);
  return { client, root };
}

/** Pulls events until one satisfies `wanted`, failing after `limit` events. */
async function until(
  events: AsyncIterator<WatchEvent>,
  wanted: (event: WatchEvent) => boolean,
  seen: string[],
  limit = 50,
): Promise<WatchEvent> {
  for (let count = 0; count < limit; count += 1) {
    const next = await events.next();
    if (next.done === true) {
      break;
    }
    seen.push(next.value.type);
    if (wanted(next.value)) {
      return next.value;
    }
  }
  throw new Error(`the awaited event never came; saw ${seen.join(", ")}`);
}

test("the integrity watch follows the daemon across a restart", async () => {
  const daemon = await Daemon.start(config);
  const stop = new AbortController();
  try {
    const { client, root } = await signedIn(daemon);

    const seen: string[] = [];
    const events = watchIntegrity(client, { signal: stop.signal, retryDelayMs: 50, maxRetryDelayMs: 200 });
    const before = await until(events, (event) => event.type === "status", seen);
    assert.equal(before.type === "status" && before.status.container, CONTAINER);

    await daemon.stop();
    await until(events, (event) => event.type === "disconnected", seen);
    await daemon.restart();
    await until(events, (event) => event.type === "reconnected", seen);
    const after = await until(events, (event) => event.type === "status", seen);
    assert.equal(after.type === "status" && after.status.container, CONTAINER);
    // The session survived the restart: the watch needed it to resume.
    assert.equal((await client.auth.whoAmI({})).user?.username, "root");
    // Ending the session ends the watch with Unauthenticated, not a retry loop.
    await client.logout();
    await assert.rejects(until(events, () => false, seen), Unauthenticated);
    client.close();
  } finally {
    stop.abort();
    await daemon.dispose();
  }
});

test("a config write against a stale version is a Conflict carrying the current version", async () => {
  const daemon = await Daemon.start(config);
  try {
    const { client, root } = await signedIn(daemon);
    await client.elevate({ totpCode: await root.totp.nextCode() });
    const current = await client.config.getConfig({ container: CONTAINER });
    const text = '{ gateway: { bind: "loopback", port: 18789 } }\n';
    const written = await client.config.updateConfig({
      container: CONTAINER,
      expectedVersion: current.version,
      text,
      note: "port",
    });
    await assert.rejects(
      client.config.updateConfig({ container: CONTAINER, expectedVersion: current.version, text, note: "again" }),
      (error: unknown) => error instanceof Conflict && error.currentVersion === written.version,
    );
    client.close();
  } finally {
    await daemon.dispose();
  }
});

test("the watch reopens after a stream occcd cut for waiting on its reader, never after an alarm or a refusal", () => {
  const answer = (code: Status, reason?: string): OcccError => {
    const metadata = new Metadata();
    if (reason !== undefined) {
      metadata.set(DENIAL_TRAILER, reason);
    }
    return toOcccError({ code, details: "occcd's sentence", metadata });
  };
  // Cut after its events waited 60 s for this process: reopen and catch up.
  assert.equal(reopensAfter(answer(Status.DEADLINE_EXCEEDED)), true);
  assert.equal(reopensAfter(answer(Status.UNAVAILABLE)), true);
  assert.equal(reopensAfter(new ConnectError("no socket yet", false)), true);
  // An untrusted socket is an alarm; a refusal needs the person.
  assert.equal(reopensAfter(new ConnectError("someone else's socket", true)), false);
  assert.equal(reopensAfter(answer(Status.UNAUTHENTICATED, "login-required")), false);
  assert.equal(reopensAfter(answer(Status.PERMISSION_DENIED, "forbidden")), false);
  assert.equal(reopensAfter(answer(Status.RESOURCE_EXHAUSTED)), false);
  assert.equal(reopensAfter(new Error("a bug in the caller")), false);
});
