/**
 * Test support: a real occcd (`target/debug/occcd --dev DIR`) in a private
 * temporary folder, people who bootstrap and log in, and TOTP codes from
 * Debian's `oathtool` (the reference implementation).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";

import { devDaemon, loginWithPassword, OcccClient, type LoggedIn } from "../src/index.js";

const here = dirname(fileURLToPath(import.meta.url));
/** The workspace root (dist/test → client-sdk/typescript → workspace). */
export const WORKSPACE = resolve(here, "..", "..", "..", "..");
/** Argon2 parameters cheap enough for tests (the Rust tests use the same). */
const CHEAP_ARGON2 = "argon2_iterations = 1\nargon2_memory_kib = 8192\nargon2_parallelism = 1\n";
/** A password occcd's policy accepts. */
export const GOOD_PASSWORD = "violet-anchor-tundra-93";

/** Built binaries of the workspace; `cargo build --workspace --bins` makes them. */
export function workspaceBinary(name: string): string {
  const path = join(WORKSPACE, "target", "debug", name);
  if (!existsSync(path)) {
    throw new Error(`${path} is missing: run cargo build --workspace --bins (scripts/test does)`);
  }
  return path;
}

/**
 * Marks a test that needs something this machine lacks: skipped with the
 * reason locally, a failure in CI (CI must run every real-component test).
 */
export function unavailable(what: string): string | false {
  if (process.env.CI !== undefined && process.env.CI !== "" && process.env.CI !== "false") {
    throw new Error(`this test needs ${what}, which this CI machine lacks: CI must run every real-component test`);
  }
  return `needs ${what}`;
}

/** True when running as root. */
export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** A dev-mode daemon in its own 0700 folder. */
export class Daemon {
  readonly dir: string;
  #child: ChildProcess | undefined;

  private constructor(dir: string) {
    this.dir = dir;
  }

  /**
   * Writes the config (the cheap `[auth]` plus `authExtra`, then `extra`,
   * which may be a function of the daemon's folder) and starts the daemon.
   */
  static async start(extra: string | ((dir: string) => string) = "", authExtra = ""): Promise<Daemon> {
    const dir = mkdtempSync(join(tmpdir(), "occcd-ts-"));
    const sections = typeof extra === "string" ? extra : extra(dir);
    writeFileSync(join(dir, "occcd.toml"), `[auth]\n${CHEAP_ARGON2}${authExtra}\n${sections}\n`);
    const daemon = new Daemon(dir);
    await daemon.restart();
    return daemon;
  }

  /** Starts the daemon again (after {@link stop}) and waits until it answers. */
  async restart(): Promise<void> {
    const log = openSync(join(this.dir, "occcd.log"), "a");
    const child = spawn(workspaceBinary("occcd"), ["--dev", this.dir, "--config", join(this.dir, "occcd.toml")], {
      stdio: ["ignore", log, log],
      env: { ...process.env, OCCCD_LOG: "info,occcd=debug" },
    });
    this.#child = child;
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (child.exitCode !== null) {
        throw new Error(`occcd exited during start-up (${child.exitCode}); log:\n${this.log()}`);
      }
      try {
        const client = await OcccClient.connect(devDaemon(this.dir));
        try {
          await client.system.getInfo({}, { timeoutMs: 1_000 });
          return;
        } finally {
          client.close();
        }
      } catch {
        if (Date.now() > deadline) {
          throw new Error(`occcd not ready after 15 s; log:\n${this.log()}`);
        }
        await sleep(20);
      }
    }
  }

  /** SIGTERM, and waits for the exit. */
  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (child === undefined || child.exitCode !== null) {
      return;
    }
    const exited = new Promise<void>((done) => child.once("exit", () => done()));
    child.kill("SIGTERM");
    await exited;
  }

  /** Stops the daemon and deletes its folder. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** What the daemon printed. */
  log(): string {
    try {
      return readFileSync(join(this.dir, "occcd.log"), "utf8");
    } catch {
      return "";
    }
  }

  /** A new, anonymous client. */
  client(): Promise<OcccClient> {
    return OcccClient.connect(devDaemon(this.dir));
  }

  /** The one-time bootstrap token the daemon wrote. */
  bootstrapToken(): string {
    return readFileSync(join(this.dir, "state", "bootstrap.token"), "utf8").trim();
  }
}

/** A TOTP authenticator app: hands out codes for steps never used before. */
export class TotpDevice {
  readonly secret: string;
  #lastStep: number | undefined;

  constructor(secret: string) {
    this.secret = secret;
  }

  /** A code for a step later than any handed out before (waits for the next step if needed). */
  async nextCode(): Promise<string> {
    for (;;) {
      const now = Math.floor(Date.now() / 30_000);
      const leftMs = 30_000 - (Date.now() % 30_000);
      const earliest = leftMs > 3_000 ? now - 1 : now;
      const step = this.#lastStep === undefined ? earliest : Math.max(this.#lastStep + 1, earliest);
      if (step <= now + 1) {
        this.#lastStep = step;
        return oathtool(this.secret, step);
      }
      await sleep(500);
    }
  }
}

function oathtool(secret: string, step: number): string {
  return execFileSync("oathtool", ["--totp", "-b", "-N", `@${step * 30}`, secret], { encoding: "utf8" }).trim();
}

/** Someone with an account. */
export interface Person {
  readonly username: string;
  readonly password: string;
  readonly totp: TotpDevice;
  readonly recoveryCodes: string[];
}

/** Bootstraps the first super-admin through `client` (anonymous). */
export async function bootstrap(daemon: Daemon, client: OcccClient, username: string): Promise<Person> {
  const started = await client.auth.bootstrap({
    bootstrapToken: daemon.bootstrapToken(),
    username,
    password: GOOD_PASSWORD,
  });
  if (started.totp === undefined) {
    throw new Error("bootstrap returned no TOTP enrolment");
  }
  const totp = new TotpDevice(started.totp.secretBase32);
  const codes = await client.auth.confirmEnrollment({
    enrollmentToken: started.enrollmentToken,
    totpCode: await totp.nextCode(),
  });
  return { username, password: GOOD_PASSWORD, totp, recoveryCodes: codes.codes };
}

/** Logs `person` in on `client` with password and TOTP. */
export async function logIn(client: OcccClient, person: Person): Promise<LoggedIn> {
  return loginWithPassword(client, person.username, { password: person.password, totpCode: await person.totp.nextCode() });
}
