/**
 * The error classes a frontend branches on, each produced by the real daemon,
 * and the socket checks that run before anything is sent.
 */
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { inspect } from "node:util";

import {
  ConnectError,
  devDaemon,
  Locked,
  loginWithPassword,
  OcccClient,
  PermissionDenied,
  Unauthenticated,
  UserRole,
} from "../src/index.js";
import { bootstrap, Daemon, GOOD_PASSWORD, logIn, TotpDevice } from "./support.js";

test("login required, throttled with a retry time, forbidden for the role", async () => {
  const daemon = await Daemon.start();
  try {
    const anonymous = await daemon.client();
    await assert.rejects(anonymous.auth.whoAmI({}), (error: unknown) => {
      return error instanceof Unauthenticated && error.reason === "login-required";
    });

    const root = await bootstrap(daemon, anonymous, "root");
    const admin = await daemon.client();
    await logIn(admin, root);
    await admin.elevate({ password: root.password, totpCode: await root.totp.nextCode() });
    const invited = await admin.users.createUser({ username: "vera", role: UserRole.USER_ROLE_VIEWER });
    const started = await anonymous.auth.startEnrollment({
      enrollmentToken: invited.enrollmentToken,
      password: GOOD_PASSWORD,
    });
    const vera = new TotpDevice(started.totp?.secretBase32 ?? "");
    await anonymous.auth.confirmEnrollment({ enrollmentToken: started.enrollmentToken, totpCode: await vera.nextCode() });
    const viewer = await daemon.client();
    await loginWithPassword(viewer, "vera", { password: GOOD_PASSWORD, totpCode: await vera.nextCode() });
    await assert.rejects(viewer.users.listUsers({ pageSize: 10, pageToken: "" }), (error: unknown) => {
      return error instanceof PermissionDenied && error.reason === "forbidden";
    });

    // After logout the token is gone locally and at occcd: the session
    // is no longer among occcd's active ones.
    const veraSessions = async (): Promise<number> =>
      (await admin.users.listActiveSessions({})).sessions.filter((session) => session.username === "vera").length;
    assert.equal(await veraSessions(), 1);
    await viewer.logout();
    assert.equal(viewer.loggedIn, false);
    await assert.rejects(viewer.auth.whoAmI({}), Unauthenticated);
    assert.equal(await veraSessions(), 0, "logout ended the session at occcd");

    // Wrong passwords: occcd slows the account down and says for how long.
    let locked: Locked | undefined;
    for (let attempt = 0; attempt < 8 && locked === undefined; attempt += 1) {
      try {
        await loginWithPassword(anonymous, "vera", { password: "not-the-password-at-all", totpCode: "000000" });
        assert.fail("a wrong password logged in");
      } catch (error) {
        if (error instanceof Locked) {
          locked = error;
        } else {
          assert.ok(error instanceof Unauthenticated, String(error));
        }
      }
    }
    assert.ok(locked !== undefined, "repeated failures were throttled");
    assert.ok(locked.reason === "throttled" || locked.reason === "account-locked", String(locked.reason));
    assert.ok((locked.retryAfterMs ?? 0) > 0, `retry after ${String(locked.retryAfterMs)} ms`);
    assert.equal(locked.quarantined, false);
    for (const client of [anonymous, admin, viewer]) {
      client.close();
    }
  } finally {
    await daemon.dispose();
  }
});

test("sockets that are missing, not sockets, someone else's, or in a folder others can write are refused", async () => {
  const folder = mkdtempSync(join(tmpdir(), "occc-ts-socket-"));
  try {
    const options = devDaemon(folder);
    await assert.rejects(OcccClient.connect(options), (error: unknown) => {
      return error instanceof ConnectError && /no occcd socket/.test(error.message) && !error.untrusted;
    });
    writeFileSync(options.socketPath, "not a socket");
    await assert.rejects(OcccClient.connect(options), /is not a socket/);
    rmSync(options.socketPath);

    const server = createServer();
    await new Promise<void>((listening) => server.listen(options.socketPath, listening));
    try {
      const client = await OcccClient.connect(options);
      // Nothing public hands out the token.
      assert.equal("metadata" in client, false);
      assert.equal(JSON.stringify(Object.keys(client)).includes("token"), false);
      client.close();
      await assert.rejects(
        OcccClient.connect({ ...options, expectedOwnerUid: options.expectedOwnerUid + 1 }),
        /possibly spoofed daemon/,
      );
      chmodSync(folder, 0o775);
      await assert.rejects(OcccClient.connect(options), (error: unknown) => {
        return error instanceof ConnectError && error.untrusted && /could be swapped/.test(error.message);
      });
      chmodSync(folder, 0o700);
      await assert.rejects(OcccClient.connect({ ...options, socketPath: "relative.sock" }), /must be absolute/);
    } finally {
      await new Promise<void>((closed) => server.close(() => closed()));
    }
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

test("the session token shows in no dump of the client, and calls still carry it", async () => {
  const daemon = await Daemon.start();
  try {
    const client = await daemon.client();
    const root = await bootstrap(daemon, client, "root");
    const answer = await client.auth.login({
      username: "root",
      password: root.password,
      totpCode: await root.totp.nextCode(),
    });
    const token = answer.sessionToken;
    assert.ok(token.length >= 32, "a real token");
    client.useSessionToken(token);
    const me = await client.auth.whoAmI({});
    assert.equal(me.user?.username, "root");
    // What an app might log or serialize: the client itself, after calls.
    const dumps = [
      inspect(client, { showHidden: true, depth: 12, getters: true }),
      JSON.stringify(client, (_key, value: unknown) => (typeof value === "bigint" ? String(value) : value)),
      String(client),
      Object.getOwnPropertyNames(client).join(","),
    ];
    for (const dump of dumps) {
      assert.ok(!dump.includes(token), "the token appears in a dump of the client");
    }
    await client.logout();
    assert.ok(!inspect(client, { showHidden: true, depth: 12 }).includes(token));
  } finally {
    await daemon.dispose();
  }
});
