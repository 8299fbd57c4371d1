/**
 * `@occc/client`: a typed TypeScript client for occcd over its Unix socket.
 *
 * ```ts
 * const client = await OcccClient.connect(); // the system daemon
 * await loginChain(client, "alice", { device }, askPasswordAndCode);
 * const me = await client.auth.whoAmI({});
 * ```
 */
export { SoftwareAuthenticator, type PlatformAuthenticator } from "./authenticator.js";
export { OcccClient, type Reauthenticate } from "./client.js";
export { checkSocket, devDaemon, systemDaemon, MACOS_SYSTEM_SOCKET, SYSTEM_SOCKET, type ConnectOptions } from "./connect.js";
export {
  Conflict,
  ConnectError,
  InvalidInput,
  Locked,
  NotFound,
  OcccError,
  PermissionDenied,
  ReauthRequired,
  Unauthenticated,
  Unavailable,
  toOcccError,
} from "./errors.js";
export {
  elevateWithDeviceKey,
  loginChain,
  loginWithDeviceKey,
  loginWithPam,
  loginWithPassword,
  registerDeviceKey,
  type Biometrics,
  type DeviceCredential,
  type LoggedIn,
  type PasswordAnswer,
} from "./login.js";
export { pamElevate, pamLogin, type PamPromptEvent, type PamPrompter } from "./pam.js";
export type { CallSettings, UnaryMethods } from "./rpc.js";
export { environmentLogs, watchIntegrity, type WatchEvent, type WatchOptions } from "./watch.js";
export * from "./types.js";
