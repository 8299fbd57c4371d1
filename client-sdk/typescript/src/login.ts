/**
 * Logging in and elevating: device keys, PAM biometrics, password + TOTP,
 * and the chain that tries them in the order the daemon recommends.
 *
 * Invariant: the chain tries a biometric method only if the daemon offers it
 * for the user and the app supplied it; any biometric failure falls back to
 * password + TOTP, never to nothing. The token goes into the client and is
 * not returned.
 */
import type { PlatformAuthenticator } from "./authenticator.js";
import type { OcccClient } from "./client.js";
import { OcccError, Unauthenticated } from "./errors.js";
import type { AuthSession, LoginResponse, UserProfile } from "../generated/occc/v1/auth.js";
import { ChallengePurpose, LoginMethod, type DeviceKey } from "../generated/occc/v1/device_keys.js";
import { pamLogin, type PamPrompter } from "./pam.js";

/** A device key the app holds: its id at occcd and the authenticator. */
export interface DeviceCredential {
  readonly keyId: string;
  readonly authenticator: PlatformAuthenticator;
}

/** What a login leaves the app: who is logged in and the session (not the token). */
export interface LoggedIn {
  readonly user: UserProfile;
  readonly session: AuthSession;
  readonly method: LoginMethod;
}

/** Password and second factor, asked only when the chain reaches them. */
export interface PasswordAnswer {
  readonly password: string;
  /** A TOTP code, or leave empty and give `recoveryCode`. */
  readonly totpCode?: string;
  readonly recoveryCode?: string;
}

/** Biometric methods the app can use. */
export interface Biometrics {
  readonly device?: DeviceCredential;
  readonly pam?: PamPrompter;
}

function keep(client: OcccClient, response: LoginResponse, method: LoginMethod): LoggedIn {
  if (response.user === undefined || response.session === undefined) {
    throw new OcccError("occcd's login answer lacks the user or the session", 13);
  }
  client.useSessionToken(response.sessionToken);
  return { user: response.user, session: response.session, method };
}

/** Logs in with password and a TOTP code (or a recovery code). */
export async function loginWithPassword(
  client: OcccClient,
  username: string,
  answer: PasswordAnswer,
): Promise<LoggedIn> {
  const secondFactor =
    answer.recoveryCode !== undefined && answer.recoveryCode !== ""
      ? { recoveryCode: answer.recoveryCode }
      : { totpCode: answer.totpCode ?? "" };
  const response = await client.auth.login({ username, password: answer.password, ...secondFactor });
  return keep(client, response, LoginMethod.LOGIN_METHOD_PASSWORD_TOTP);
}

/** Logs in with a device key (Touch ID, Windows Hello, software key). */
export async function loginWithDeviceKey(
  client: OcccClient,
  username: string,
  device: DeviceCredential,
): Promise<LoggedIn> {
  const challenge = await client.deviceKeys.createLoginChallenge({ username });
  const signature = await device.authenticator.sign(challenge.payload);
  const response = await client.deviceKeys.loginWithDeviceKey({
    username,
    keyId: device.keyId,
    challengeId: challenge.challengeId,
    signature: Buffer.from(signature),
  });
  return keep(client, response, LoginMethod.LOGIN_METHOD_DEVICE_KEY);
}

/** Logs in through the daemon's PAM stack (fingerprint reader). */
export async function loginWithPam(client: OcccClient, username: string, prompter: PamPrompter): Promise<LoggedIn> {
  const response = await pamLogin(client, username, prompter);
  return keep(client, response, LoginMethod.LOGIN_METHOD_PAM_BIOMETRIC);
}

async function signSessionChallenge(
  client: OcccClient,
  purpose: ChallengePurpose,
  authenticator: PlatformAuthenticator,
): Promise<{ challengeId: string; signature: Buffer }> {
  const challenge = await client.deviceKeys.createSessionChallenge({ purpose });
  const signature = await authenticator.sign(challenge.payload);
  return { challengeId: challenge.challengeId, signature: Buffer.from(signature) };
}

/** Registers the authenticator's key for the logged-in (password-elevated) user. */
export async function registerDeviceKey(
  client: OcccClient,
  name: string,
  authenticator: PlatformAuthenticator,
): Promise<DeviceKey> {
  const signed = await signSessionChallenge(client, ChallengePurpose.CHALLENGE_PURPOSE_REGISTER, authenticator);
  return client.deviceKeys.registerDeviceKey({
    name,
    platform: authenticator.platform,
    publicKey: Buffer.from(await authenticator.publicKey()),
    ...signed,
  });
}

/** Elevates the session with a device key. */
export async function elevateWithDeviceKey(client: OcccClient, device: DeviceCredential): Promise<AuthSession> {
  const signed = await signSessionChallenge(client, ChallengePurpose.CHALLENGE_PURPOSE_ELEVATE, device.authenticator);
  return client.deviceKeys.elevateWithDeviceKey({ username: "", keyId: device.keyId, ...signed });
}

/**
 * Each biometric method the daemon offers for `username` and `biometrics`
 * can use, in the daemon's order, then password + TOTP from `fallback`
 * (called only when needed). `onFallback` hears why a biometric method failed.
 */
export async function loginChain(
  client: OcccClient,
  username: string,
  biometrics: Biometrics,
  fallback: () => Promise<PasswordAnswer>,
  onFallback: (method: LoginMethod, error: unknown) => void = () => undefined,
): Promise<LoggedIn> {
  const offered = await client.deviceKeys.getLoginMethods({ username });
  for (const method of offered.methods) {
    if (method === LoginMethod.LOGIN_METHOD_DEVICE_KEY && biometrics.device !== undefined) {
      try {
        return await loginWithDeviceKey(client, username, biometrics.device);
      } catch (err) {
        onFallback(method, err);
      }
    } else if (method === LoginMethod.LOGIN_METHOD_PAM_BIOMETRIC && biometrics.pam !== undefined) {
      try {
        return await loginWithPam(client, username, biometrics.pam);
      } catch (err) {
        onFallback(method, err);
      }
    } else if (method === LoginMethod.LOGIN_METHOD_PASSWORD_TOTP) {
      return loginWithPassword(client, username, await fallback());
    }
  }
  throw new Unauthenticated("no login method succeeded", 16);
}
