/**
 * Logging in through each method against the real daemon: password + TOTP,
 * a device key (registered after a password re-authentication), the chain's
 * fallback when the device key fails, and PAM through a real libpam stack.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import {
  LoginMethod,
  ReauthRequired,
  SoftwareAuthenticator,
  UserRole,
  loginChain,
  registerDeviceKey,
  type PamPromptEvent,
} from "../src/index.js";
import { bootstrap, Daemon, isRoot, logIn, unavailable, type Person } from "./support.js";

const noFallback = (): Promise<never> => Promise.reject(new Error("the chain should not ask for a password"));

test("password + TOTP, then a device key the chain prefers, then fallback when the key fails", async () => {
  const daemon = await Daemon.start();
  try {
    const anonymous = await daemon.client();
    const root = await bootstrap(daemon, anonymous, "root");
    const admin = await daemon.client();
    const loggedIn = await logIn(admin, root);
    assert.equal(loggedIn.method, LoginMethod.LOGIN_METHOD_PASSWORD_TOTP);
    const me = await admin.auth.whoAmI({});
    assert.equal(me.user?.username, "root");
    assert.equal(me.user?.role, UserRole.USER_ROLE_SUPER_ADMIN);
    assert.ok(me.permissions.includes("manage_users"), me.permissions.join(","));

    // Registering a key changes a credential: occcd answers ReauthRequired,
    // the app re-authenticates (password + TOTP), the retry works.
    const key = SoftwareAuthenticator.generate();
    let asked: ReauthRequired | undefined;
    const registered = await admin.withElevation(
      () => registerDeviceKey(admin, "test laptop", key),
      async (error) => {
        asked = error;
        return admin.elevate({ password: root.password, totpCode: await root.totp.nextCode() });
      },
    );
    assert.ok(asked instanceof ReauthRequired, "the first attempt was refused with ReauthRequired");
    assert.equal(registered.platform, "software");

    const laptop = await daemon.client();
    const viaKey = await loginChain(laptop, "root", { device: { keyId: registered.keyId, authenticator: key } }, noFallback);
    assert.equal(viaKey.method, LoginMethod.LOGIN_METHOD_DEVICE_KEY);
    assert.equal((await laptop.auth.whoAmI({})).session?.sessionId, viaKey.session.sessionId);

    // Elevated with a TOTP code only, a credential change still needs the password.
    await laptop.elevate({ totpCode: await root.totp.nextCode() });
    await assert.rejects(
      registerDeviceKey(laptop, "second laptop", SoftwareAuthenticator.generate()),
      (error: unknown) => error instanceof ReauthRequired && error.needsPassword,
    );

    // A stolen key id with the wrong key: the chain falls back to password + TOTP.
    const impostor = await daemon.client();
    const failures: LoginMethod[] = [];
    const viaPassword = await loginChain(
      impostor,
      "root",
      { device: { keyId: registered.keyId, authenticator: SoftwareAuthenticator.generate() } },
      () => Promise.resolve({ password: root.password, recoveryCode: root.recoveryCodes[0] ?? "" }),
      (method) => failures.push(method),
    );
    assert.deepEqual(failures, [LoginMethod.LOGIN_METHOD_DEVICE_KEY]);
    assert.equal(viaPassword.method, LoginMethod.LOGIN_METHOD_PASSWORD_TOTP);
    for (const client of [anonymous, admin, laptop, impostor]) {
      client.close();
    }
  } finally {
    await daemon.dispose();
  }
});

const OS_USER = "occc-ts-finger";
const pamSkip = isRoot() ? false : unavailable("root (it writes a PAM service to /etc/pam.d and creates an OS user)");
let pamService = "";
let pamScripts = "";

before(() => {
  if (pamSkip !== false) {
    return;
  }
  pamScripts = mkdtempSync(join(tmpdir(), "occc-ts-pam-"));
  chmodSync(pamScripts, 0o755);
  const answer = join(pamScripts, "answer.sh");
  writeFileSync(answer, '#!/bin/sh\nread -r answer\n[ "$answer" = "blue" ]\n', { mode: 0o755 });
  pamService = `occc-ts-question-${process.pid}`;
  writeFileSync(
    join("/etc/pam.d", pamService),
    "auth requisite pam_echo.so What colour is the sky? Answer below.\n" +
      `auth required pam_exec.so expose_authtok quiet ${answer}\n` +
      "account required pam_permit.so\n",
  );
  try {
    execFileSync("id", [OS_USER], { stdio: "ignore" });
  } catch {
    execFileSync("useradd", ["--no-create-home", "--shell", "/usr/sbin/nologin", OS_USER]);
  }
});

after(() => {
  if (pamService !== "") {
    rmSync(join("/etc/pam.d", pamService), { force: true });
    rmSync(pamScripts, { recursive: true, force: true });
  }
});

test("PAM: the chain relays the stack's prompts and logs in", { skip: pamSkip }, async () => {
  const daemon = await Daemon.start(
    "",
    `[auth.pam]\nservice = "${pamService}"\ntimeout_ms = 5000\nmax_concurrent = 4\nallow_root_peer = true\nmax_per_peer = 4\n`,
  );
  try {
    const anonymous = await daemon.client();
    const root: Person = await bootstrap(daemon, anonymous, "root");
    const admin = await daemon.client();
    await logIn(admin, root);
    await admin.elevate({ password: root.password, totpCode: await root.totp.nextCode() });
    await admin.users.linkOsAccount({ username: "root", osAccount: OS_USER });

    const seen: string[] = [];
    const prompter = {
      show: (prompt: PamPromptEvent): void => {
        seen.push(`${prompt.kind}: ${prompt.text}`);
      },
      ask: (prompt: PamPromptEvent): Promise<string> => {
        seen.push(`ask ${prompt.kind}: ${prompt.text}`);
        return Promise.resolve("blue");
      },
    };
    const desk = await daemon.client();
    const result = await loginChain(desk, "root", { pam: prompter }, noFallback);
    assert.equal(result.method, LoginMethod.LOGIN_METHOD_PAM_BIOMETRIC);
    assert.ok(seen.some((line) => line.includes("What colour is the sky?")), seen.join(" | "));
    assert.equal((await desk.auth.whoAmI({})).user?.username, "root");

    // A wrong answer: PAM refuses, the chain falls back to password + TOTP.
    const wrong = { show: prompter.show, ask: (): Promise<string> => Promise.resolve("green") };
    const other = await daemon.client();
    const fallback = await loginChain(other, "root", { pam: wrong }, () =>
      Promise.resolve({ password: root.password, recoveryCode: root.recoveryCodes[0] ?? "" }),
    );
    assert.equal(fallback.method, LoginMethod.LOGIN_METHOD_PASSWORD_TOTP);
    for (const client of [anonymous, admin, desk, other]) {
      client.close();
    }
  } finally {
    await daemon.dispose();
  }
});
