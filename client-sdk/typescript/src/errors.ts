/**
 * Errors a frontend can branch on, mapped from occcd's gRPC status and its
 * `occc-denial` trailer (docs/clients.md lists the reasons).
 *
 * Invariant: every failure of an SDK call is an {@link OcccError}; the class
 * says what to do (log in, re-authenticate, wait, ask someone else), the
 * message is the daemon's own sentence, which never contains a secret.
 */
import { Metadata, status as Code, type StatusObject } from "@grpc/grpc-js";

/** Trailer naming why a call was refused. */
export const DENIAL_TRAILER = "occc-denial";
/** Trailer with how long to wait before retrying, in milliseconds. */
export const RETRY_AFTER_TRAILER = "occc-retry-after-ms";
/** Trailer with a config file's current version after a conflicting write. */
export const CONFIG_VERSION_TRAILER = "occc-config-version";

/** The base class: a call occcd refused or could not answer. */
export class OcccError extends Error {
  /** The gRPC status code (see `status` in @grpc/grpc-js). */
  readonly code: Code;
  /** The `occc-denial` reason, when the daemon named one. */
  readonly reason: string | undefined;

  constructor(message: string, code: Code, reason?: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.reason = reason;
  }
}

/** No (valid) session: show the login screen. */
export class Unauthenticated extends OcccError {}

/** The operation needs a fresh re-authentication: elevate, then retry. */
export class ReauthRequired extends OcccError {
  /** True when the password is needed too (changing a credential). */
  get needsPassword(): boolean {
    return this.reason === "password-elevation-required";
  }
}

/**
 * Locked: a container is quarantined (sensitive operations wait for a
 * super-admin's release), or the account is locked or throttled after failed
 * attempts (wait {@link Locked.retryAfterMs}).
 */
export class Locked extends OcccError {
  /** How long to wait, when the lock ends by itself. */
  readonly retryAfterMs: number | undefined;

  constructor(message: string, code: Code, reason: string | undefined, retryAfterMs: number | undefined) {
    super(message, code, reason);
    this.retryAfterMs = retryAfterMs;
  }

  /** True for a quarantine lock (released by a super-admin, not by time). */
  get quarantined(): boolean {
    return this.reason === "quarantined";
  }
}

/** The role does not allow it (`forbidden`, `super-admin-required`). */
export class PermissionDenied extends OcccError {}

/** The daemon refused the input; the message says what to fix. */
export class InvalidInput extends OcccError {}

/** Someone changed it first (optimistic concurrency); reload and retry. */
export class Conflict extends OcccError {
  /** For config writes: the file's current version. */
  readonly currentVersion: string | undefined;

  constructor(message: string, code: Code, reason: string | undefined, currentVersion: string | undefined) {
    super(message, code, reason);
    this.currentVersion = currentVersion;
  }
}

/** Not found: the user, session, version or container does not exist. */
export class NotFound extends OcccError {}

/** The daemon cannot be reached, or is shutting down; retry later. */
export class Unavailable extends OcccError {}

/**
 * The socket is missing, or not trustworthy (not a socket, someone else's, in
 * a folder others can write); nothing was sent. `untrusted` tells the two
 * apart: a missing socket is worth retrying, an untrusted one is an alarm.
 */
export class ConnectError extends OcccError {
  readonly untrusted: boolean;

  constructor(message: string, untrusted = true) {
    super(message, Code.UNAVAILABLE, untrusted ? "untrusted-socket" : "no-socket");
    this.untrusted = untrusted;
  }
}

/** Maps a grpc-js status to the SDK's error classes. */
export function toOcccError(error: Pick<StatusObject, "code" | "details" | "metadata">): OcccError {
  const metadata = error.metadata ?? new Metadata();
  const reason = firstText(metadata, DENIAL_TRAILER);
  const message = error.details === "" ? `occcd answered ${Code[error.code]}` : error.details;
  switch (reason) {
    case "login-required":
      return new Unauthenticated(message, error.code, reason);
    case "elevation-required":
    case "password-elevation-required":
      return new ReauthRequired(message, error.code, reason);
    case "quarantined":
    case "account-locked":
    case "throttled":
      return new Locked(message, error.code, reason, retryAfter(metadata));
    case "forbidden":
    case "super-admin-required":
      return new PermissionDenied(message, error.code, reason);
    default:
      return byCode(message, error.code, reason, metadata);
  }
}

function byCode(message: string, code: Code, reason: string | undefined, metadata: Metadata): OcccError {
  switch (code) {
    case Code.UNAUTHENTICATED:
      return new Unauthenticated(message, code, reason);
    case Code.PERMISSION_DENIED:
      return new PermissionDenied(message, code, reason);
    case Code.INVALID_ARGUMENT:
    case Code.OUT_OF_RANGE:
      return new InvalidInput(message, code, reason);
    case Code.ABORTED:
      return new Conflict(message, code, reason, firstText(metadata, CONFIG_VERSION_TRAILER));
    case Code.NOT_FOUND:
      return new NotFound(message, code, reason);
    case Code.UNAVAILABLE:
      return new Unavailable(message, code, reason);
    default:
      return new OcccError(message, code, reason);
  }
}

function firstText(metadata: Metadata, key: string): string | undefined {
  const value = metadata.get(key)[0];
  return typeof value === "string" ? value : undefined;
}

function retryAfter(metadata: Metadata): number | undefined {
  const text = firstText(metadata, RETRY_AFTER_TRAILER);
  const value = text === undefined ? Number.NaN : Number(text);
  return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}
