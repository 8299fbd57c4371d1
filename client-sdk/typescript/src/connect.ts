/**
 * Finding occcd's socket and deciding whether to trust it.
 *
 * Invariant: nothing is sent until the socket file is a socket owned by the
 * expected uid, in a folder owned by that uid or root that only its owner can
 * write, below folders owned by that uid or root that not everyone can write
 * (unless sticky, like /tmp) — so no other user can have put it there or can
 * swap it later. Node cannot read the peer's credentials (`SO_PEERCRED`) the way
 * the Rust SDK does; the folder rule is what stands in for that check.
 */
import type { Stats } from "node:fs";
import { lstat } from "node:fs/promises";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { getuid } from "node:process";

import { ConnectError } from "./errors.js";

/** Where the packaged daemon listens on Linux. */
export const SYSTEM_SOCKET = "/run/occcd/occcd.sock";
/** Where the packaged daemon listens on macOS (no /run there). */
export const MACOS_SYSTEM_SOCKET = "/var/run/occcd/occcd.sock";

/** How to reach the daemon and whom to trust. */
export interface ConnectOptions {
  /** The daemon's socket (absolute path). */
  readonly socketPath: string;
  /** uid that must own the socket: 0 for the system daemon. */
  readonly expectedOwnerUid: number;
}

/** The system daemon, owned by root. */
export function systemDaemon(): ConnectOptions {
  return { socketPath: process.platform === "darwin" ? MACOS_SYSTEM_SOCKET : SYSTEM_SOCKET, expectedOwnerUid: 0 };
}

/** A dev-mode daemon started with `occcd --dev DIR`, run by the current user. */
export function devDaemon(dir: string): ConnectOptions {
  return { socketPath: join(resolve(dir), "occcd.sock"), expectedOwnerUid: currentUid() };
}

const GROUP_OR_OTHER_WRITE = 0o022;
const OTHER_WRITE = 0o002;
const STICKY = 0o1000;

/**
 * Checks the socket and every folder above it. Throws {@link ConnectError}
 * with a sentence saying what is wrong; returns when it is safe to connect.
 */
export async function checkSocket(options: ConnectOptions): Promise<void> {
  const path = options.socketPath;
  if (!isAbsolute(path)) {
    throw new ConnectError(`the socket path must be absolute, not ${path}`);
  }
  const socket = await lstatOrExplain(path);
  if (!socket.isSocket()) {
    throw new ConnectError(`${path} is not a socket; refusing to connect`);
  }
  if (socket.uid !== options.expectedOwnerUid) {
    throw new ConnectError(
      `socket ${path} is owned by uid ${socket.uid}, expected uid ${options.expectedOwnerUid}; refusing to connect to a possibly spoofed daemon`,
    );
  }
  let folder = dirname(path);
  let nearest = true;
  for (;;) {
    await checkFolder(folder, options.expectedOwnerUid, nearest);
    const parent = dirname(folder);
    if (parent === folder) {
      return;
    }
    folder = parent;
    nearest = false;
  }
}

async function checkFolder(folder: string, expectedUid: number, holdsSocket: boolean): Promise<void> {
  const info = await lstatOrExplain(folder);
  if (info.isSymbolicLink()) {
    // A link could be repointed; /var on macOS is the one expected link.
    if (process.platform === "darwin" && folder === "/var") {
      return;
    }
    throw new ConnectError(`${folder} is a symbolic link; give the socket's real path`);
  }
  if (info.uid !== 0 && info.uid !== expectedUid) {
    throw new ConnectError(
      `${folder} belongs to uid ${info.uid}, who could replace the socket; refusing to connect`,
    );
  }
  // The socket's own folder: only its owner writes it. Folders above: not
  // writable by everyone unless sticky (/tmp); a root-owned folder its group
  // may write (macOS's /var/run) is accepted there.
  const unsafeMode = holdsSocket
    ? (info.mode & GROUP_OR_OTHER_WRITE) !== 0
    : (info.mode & OTHER_WRITE) !== 0 && (info.mode & STICKY) === 0;
  if (unsafeMode) {
    throw new ConnectError(
      `${folder} can be written by users other than its owner (mode ${(info.mode & 0o7777).toString(8)}), so the socket in it could be swapped; refusing to connect`,
    );
  }
}

async function lstatOrExplain(path: string): Promise<Stats> {
  try {
    return await lstat(path);
  } catch (err) {
    const code = err instanceof Error && "code" in err ? String(err.code) : "";
    if (code === "ENOENT") {
      throw new ConnectError(`no occcd socket at ${path}; is the daemon running? (systemctl status occcd)`, false);
    }
    throw new ConnectError(`cannot inspect ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function currentUid(): number {
  if (getuid === undefined) {
    throw new ConnectError("this platform has no uids; give expectedOwnerUid explicitly");
  }
  return getuid();
}
