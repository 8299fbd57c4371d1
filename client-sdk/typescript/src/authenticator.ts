/**
 * Device-bound keys: the app implements {@link PlatformAuthenticator} with
 * Touch ID (Secure Enclave) or Windows Hello; {@link SoftwareAuthenticator}
 * keeps a key in memory for tests and headless tools.
 *
 * Invariant: the private key never leaves the authenticator; occcd sees only
 * the public key and signatures over challenges it issued.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";

/** A device-bound ECDSA P-256 key behind the OS's biometric prompt. */
export interface PlatformAuthenticator {
  /** Label stored with the key, e.g. `touch-id`, `windows-hello`, `software`. */
  readonly platform: string;
  /** The public key as a SEC1 uncompressed point (65 bytes, starting 0x04). */
  publicKey(): Promise<Uint8Array>;
  /**
   * Signs `payload` with ECDSA P-256 / SHA-256, DER-encoded, after the OS
   * prompt. Rejects when the person cancels or fails the prompt.
   */
  sign(payload: Uint8Array): Promise<Uint8Array>;
}

/** A P-256 key in memory; no OS prompt. */
export class SoftwareAuthenticator implements PlatformAuthenticator {
  readonly platform = "software";
  readonly #privateKey: KeyObject;

  private constructor(privateKey: KeyObject) {
    this.#privateKey = privateKey;
  }

  /** A new random key. */
  static generate(): SoftwareAuthenticator {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    return new SoftwareAuthenticator(privateKey);
  }

  /** Loads a key saved with {@link SoftwareAuthenticator.pkcs8}. */
  static fromPkcs8(der: Uint8Array): SoftwareAuthenticator {
    return new SoftwareAuthenticator(createPrivateKey({ key: Buffer.from(der), format: "der", type: "pkcs8" }));
  }

  /** The private key (PKCS#8 DER), to keep where only its owner can read it. */
  pkcs8(): Uint8Array {
    return this.#privateKey.export({ format: "der", type: "pkcs8" });
  }

  publicKey(): Promise<Uint8Array> {
    const jwk = createPublicKey(this.#privateKey).export({ format: "jwk" });
    if (jwk.x === undefined || jwk.y === undefined) {
      return Promise.reject(new Error("the P-256 key has no coordinates"));
    }
    const point = Buffer.concat([Buffer.of(0x04), Buffer.from(jwk.x, "base64url"), Buffer.from(jwk.y, "base64url")]);
    return Promise.resolve(point);
  }

  sign(payload: Uint8Array): Promise<Uint8Array> {
    return Promise.resolve(sign("sha256", payload, { key: this.#privateKey, dsaEncoding: "der" }));
  }

  /** Never prints the key. */
  toJSON(): string {
    return "SoftwareAuthenticator(<key redacted>)";
  }
}
