/**
 * Long-lived streams: the integrity watch, which reconnects and resumes on
 * its own, and the environment's logs.
 *
 * Invariant: a reconnect happens only after the socket passes
 * {@link checkSocket} again (a socket that is there but untrusted ends the
 * watch with that error); after it, the watch yields every finding
 * recorded while it was away (from `ListFindings`, marked `missed`) before
 * new events — also after occcd cut a watch its consumer stopped reading —
 * and a session that ended (login required, permission gone) ends the
 * watch with that error instead of retrying forever.
 */
import { setTimeout as sleep } from "node:timers/promises";

import { status as Code } from "@grpc/grpc-js";

import type { OcccClient } from "./client.js";
import { checkSocket } from "./connect.js";
import { ConnectError, OcccError, Unavailable } from "./errors.js";
import {
  EnvironmentService,
  IntegrityService,
  type ContainerStatus,
  type Finding,
  type LogLine,
  type StreamLogsRequest,
} from "../generated/occc/v1/integrity.js";

/** What the integrity watch yields. */
export type WatchEvent =
  | { readonly type: "status"; readonly status: ContainerStatus }
  | { readonly type: "finding"; readonly finding: Finding; readonly missed: boolean }
  | { readonly type: "disconnected"; readonly error: unknown; readonly retryInMs: number }
  | { readonly type: "reconnected" };

/** How the watch behaves when the daemon goes away. */
export interface WatchOptions {
  /** Stops the watch (the iterator ends). */
  readonly signal?: AbortSignal;
  /** First wait before reconnecting (default 250 ms), doubled up to `maxRetryDelayMs`. */
  readonly retryDelayMs?: number;
  /** Longest wait between reconnects (default 10 s). */
  readonly maxRetryDelayMs?: number;
}

/** How many findings one catch-up after a reconnect reads. */
const CATCH_UP_LIMIT = 1000;

/**
 * Follows `WatchIntegrity`: each container's status, then changes and
 * findings as they happen, across daemon restarts and socket hiccups.
 */
export async function* watchIntegrity(
  client: OcccClient,
  options: WatchOptions = {},
): AsyncGenerator<WatchEvent, void, undefined> {
  const firstDelay = options.retryDelayMs ?? 250;
  const maxDelay = options.maxRetryDelayMs ?? 10_000;
  let delay = firstDelay;
  let lastSeenMs: number | undefined;
  let reconnecting = false;
  while (!aborted(options)) {
    try {
      if (reconnecting) {
        await checkSocket(client.options);
        const missed = await client.integrity.listFindings({ container: "", limit: CATCH_UP_LIMIT });
        yield { type: "reconnected" };
        for (const finding of missed.findings.slice().reverse()) {
          if (lastSeenMs === undefined || finding.observedAtUnixMs > lastSeenMs) {
            lastSeenMs = finding.observedAtUnixMs;
            yield { type: "finding", finding, missed: true };
          }
        }
      }
      const settings = options.signal === undefined ? {} : { signal: options.signal };
      for await (const event of client.serverStream(IntegrityService.watchIntegrity, {}, settings)) {
        delay = firstDelay;
        if (event.status !== undefined) {
          yield { type: "status", status: event.status };
        } else if (event.finding !== undefined) {
          lastSeenMs = Math.max(lastSeenMs ?? 0, event.finding.observedAtUnixMs);
          yield { type: "finding", finding: event.finding, missed: false };
        }
      }
    } catch (err) {
      if (aborted(options)) {
        return;
      }
      if (!reopensAfter(err)) {
        throw err;
      }
      yield { type: "disconnected", error: err, retryInMs: delay };
    }
    // A stream that ends without an error (daemon shutting down) reconnects too.
    reconnecting = true;
    try {
      await sleep(delay, undefined, options.signal === undefined ? {} : { signal: options.signal });
    } catch {
      return;
    }
    delay = Math.min(delay * 2, maxDelay);
  }
}

/**
 * Whether the watch reopens after `err`: the daemon or its socket went away
 * (but an untrusted socket is an alarm, not a hiccup: it ends the watch), or
 * occcd ended the stream with DEADLINE_EXCEEDED because its events waited
 * 60 s for this process to take them — the reopened watch catches up on
 * what it missed.
 */
export function reopensAfter(err: unknown): boolean {
  if (err instanceof ConnectError) {
    return !err.untrusted;
  }
  return err instanceof Unavailable || (err instanceof OcccError && err.code === Code.DEADLINE_EXCEEDED);
}

/** The container's log lines (`follow` keeps the stream open). */
export function environmentLogs(
  client: OcccClient,
  request: Partial<StreamLogsRequest> & { readonly container: string },
  signal?: AbortSignal,
): AsyncGenerator<LogLine, void, undefined> {
  return client.serverStream(
    EnvironmentService.streamEnvironmentLogs,
    { tail: 0, follow: false, ...request },
    signal === undefined ? {} : { signal },
  );
}

function aborted(options: WatchOptions): boolean {
  return options.signal?.aborted === true;
}
