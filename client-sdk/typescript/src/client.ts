/**
 * The client: one channel to occcd, the session token, typed services.
 *
 * Invariant: the session token lives only in this object's private field —
 * never on disk, in a log or in an error — and goes out only as the
 * `authorization` header of calls on a socket that passed {@link checkSocket}.
 */
import { Client, credentials, Metadata, type ServiceError } from "@grpc/grpc-js";

import { checkSocket, systemDaemon, type ConnectOptions } from "./connect.js";
import { OcccError, ReauthRequired, toOcccError } from "./errors.js";
import { AuditService } from "../generated/occc/v1/audit.js";
import { AuthService, type AuthSession, type ElevateRequest } from "../generated/occc/v1/auth.js";
import { ConfigService } from "../generated/occc/v1/config.js";
import { DeviceKeysService } from "../generated/occc/v1/device_keys.js";
import { EnvironmentService, IntegrityService } from "../generated/occc/v1/integrity.js";
import { SkillsService } from "../generated/occc/v1/skills.js";
import { SystemService } from "../generated/occc/v1/system.js";
import { UsersService } from "../generated/occc/v1/users.js";
import {
  callMetadata,
  callOptions,
  unaryMethods,
  type CallSettings,
  type RpcCaller,
  type UnaryMethods,
} from "./rpc.js";

/** Largest message either side accepts (skill archives and snapshots are streamed). */
const MAX_MESSAGE_BYTES = 8 * 1024 * 1024;

/** Asked for a re-authentication when an operation needs one. */
export type Reauthenticate = (error: ReauthRequired) => Promise<AuthSession>;

/** A server-streaming method definition, as ts-proto emits it. */
export interface StreamDefinition<Request, Response> {
  readonly path: string;
  readonly requestSerialize: (value: Request) => Buffer;
  readonly responseDeserialize: (value: Buffer) => Response;
}

/** A connection to occcd. */
export class OcccClient implements RpcCaller {
  readonly grpc: Client;
  readonly options: ConnectOptions;
  /** occc.v1.Auth: login, elevation, own sessions. */
  readonly auth: UnaryMethods<typeof AuthService>;
  /** occc.v1.Users: accounts and everyone's sessions (admin). */
  readonly users: UnaryMethods<typeof UsersService>;
  /** occc.v1.DeviceKeys: Touch ID / Windows Hello keys. */
  readonly deviceKeys: UnaryMethods<typeof DeviceKeysService>;
  /** occc.v1.Integrity: the container monitor. */
  readonly integrity: UnaryMethods<typeof IntegrityService>;
  /** occc.v1.Environment: start, stop, restart the container. */
  readonly environment: UnaryMethods<typeof EnvironmentService>;
  /** occc.v1.Skills: skill review and approval. */
  readonly skills: UnaryMethods<typeof SkillsService>;
  /** occc.v1.Config: OpenClaw's config file. */
  readonly config: UnaryMethods<typeof ConfigService>;
  /** occc.v1.Audit: the audit log. */
  readonly audit: UnaryMethods<typeof AuditService>;
  /** occc.v1.System: version and uptime. */
  readonly system: UnaryMethods<typeof SystemService>;
  #token: string | undefined;

  private constructor(options: ConnectOptions) {
    this.options = options;
    this.grpc = new Client(`unix://${options.socketPath}`, credentials.createInsecure(), {
      // tonic refuses a socket path as :authority.
      "grpc.default_authority": "localhost",
      "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
      "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
    });
    this.auth = unaryMethods(this, AuthService);
    this.users = unaryMethods(this, UsersService);
    this.deviceKeys = unaryMethods(this, DeviceKeysService);
    this.integrity = unaryMethods(this, IntegrityService);
    this.environment = unaryMethods(this, EnvironmentService);
    this.skills = unaryMethods(this, SkillsService);
    this.config = unaryMethods(this, ConfigService);
    this.audit = unaryMethods(this, AuditService);
    this.system = unaryMethods(this, SystemService);
  }

  /** Checks the socket (see connect.ts), then opens a channel to it. */
  static async connect(options: ConnectOptions = systemDaemon()): Promise<OcccClient> {
    await checkSocket(options);
    return new OcccClient(options);
  }

  /** True while the client holds a session token. */
  get loggedIn(): boolean {
    return this.#token !== undefined;
  }

  /** Keeps `token` (from a login) for every later call. */
  useSessionToken(token: string): void {
    if (token === "") {
      throw new OcccError("occcd returned an empty session token", 13);
    }
    this.#token = token;
  }

  /** Forgets the session token locally (see {@link logout} to end it at occcd too). */
  forgetSession(): void {
    this.#token = undefined;
  }

  /** Ends the session at occcd and forgets the token. */
  async logout(): Promise<void> {
    try {
      await this.auth.logout({});
    } finally {
      this.forgetSession();
    }
  }

  /** Re-authenticates with a TOTP code (add the password to change credentials). */
  elevate(request: Partial<ElevateRequest>): Promise<AuthSession> {
    return this.auth.elevate({ totpCode: "", password: "", recoveryCode: "", ...request });
  }

  /**
   * Runs `operation`; if occcd answers that it needs re-authentication, asks
   * `reauthenticate` (which elevates: TOTP prompt, Touch ID…) and runs it once more.
   */
  async withElevation<Result>(operation: () => Promise<Result>, reauthenticate: Reauthenticate): Promise<Result> {
    try {
      return await operation();
    } catch (err) {
      if (!(err instanceof ReauthRequired)) {
        throw err;
      }
      await reauthenticate(err);
      return operation();
    }
  }

  /** Metadata for one call (not public: it holds the token). */
  [callMetadata](): Metadata {
    const metadata = new Metadata();
    if (this.#token !== undefined) {
      metadata.set("authorization", `Bearer ${this.#token}`);
    }
    return metadata;
  }

  /** A server stream as an async iterable; failures become {@link OcccError}s. */
  async *serverStream<Request, Response>(
    definition: StreamDefinition<Request, Response>,
    request: Request,
    settings: CallSettings = {},
  ): AsyncGenerator<Response, void, undefined> {
    const call = this.grpc.makeServerStreamRequest(
      definition.path,
      definition.requestSerialize,
      definition.responseDeserialize,
      request,
      this[callMetadata](),
      callOptions(settings),
    );
    const cancel = (): void => call.cancel();
    settings.signal?.addEventListener("abort", cancel, { once: true });
    try {
      for await (const message of call) {
        yield message as Response;
      }
    } catch (err) {
      throw isServiceError(err) ? toOcccError(err) : err;
    } finally {
      settings.signal?.removeEventListener("abort", cancel);
      call.cancel();
    }
  }

  /** Closes the channel; calls in flight fail with CANCELLED. */
  close(): void {
    this.forgetSession();
    this.grpc.close();
  }
}

/** True for the error object grpc-js gives a failed call. */
export function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && "code" in err && typeof err.code === "number" && "metadata" in err;
}
