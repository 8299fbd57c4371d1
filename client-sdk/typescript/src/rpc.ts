/**
 * Typed, promise-based calls generated from ts-proto's service definitions.
 *
 * Invariant: every call goes through the caller's `callMetadata`, so the
 * session token (when there is one) is on every request and nowhere else, and
 * every failure becomes an {@link OcccError} subclass.
 */
import { Client, Metadata, type CallOptions, type ServiceError } from "@grpc/grpc-js";

import { toOcccError } from "./errors.js";

/** The shape ts-proto gives each method of a service definition. */
interface MethodDefinition<Request, Response> {
  readonly path: string;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
  readonly requestSerialize: (value: Request) => Buffer;
  readonly responseDeserialize: (value: Buffer) => Response;
}

type RequestOf<M> = M extends { requestSerialize: (value: infer Request) => Buffer } ? Request : never;
type ResponseOf<M> = M extends { responseDeserialize: (value: Buffer) => infer Response } ? Response : never;

/** A service's one-request, one-response methods, each returning a promise. */
export type UnaryMethods<Service> = {
  readonly [Name in keyof Service as Service[Name] extends { requestStream: false; responseStream: false }
    ? Name
    : never]: (request: RequestOf<Service[Name]>, options?: CallSettings) => Promise<ResponseOf<Service[Name]>>;
};

/** Per-call settings. */
export interface CallSettings {
  /** Give up after this many milliseconds (DEADLINE_EXCEEDED). */
  readonly timeoutMs?: number;
  /** Cancels the call (CANCELLED). */
  readonly signal?: AbortSignal;
}

/**
 * The key of the method that builds a call's metadata. It is a symbol the
 * package does not export, so code holding a client cannot read the token
 * through it.
 */
export const callMetadata: unique symbol = Symbol("occc.callMetadata");

/** What a typed service needs from the client that owns it. */
export interface RpcCaller {
  readonly grpc: Client;
  /** Fresh metadata for one call: the bearer token when logged in. */
  [callMetadata](): Metadata;
}

/** Builds the promise-returning unary methods of `service`. */
export function unaryMethods<Service extends object>(caller: RpcCaller, service: Service): UnaryMethods<Service> {
  const methods: Record<string, (request: unknown, options?: CallSettings) => Promise<unknown>> = {};
  for (const [name, definition] of Object.entries(service) as [string, MethodDefinition<unknown, unknown>][]) {
    if (definition.requestStream || definition.responseStream) {
      continue;
    }
    methods[name] = (request, options) => callUnary(caller, definition, request, options);
  }
  // The mapped type above lists exactly the entries built here.
  return methods as UnaryMethods<Service>;
}

/** One unary call, as a promise. */
export function callUnary<Request, Response>(
  caller: RpcCaller,
  definition: MethodDefinition<Request, Response>,
  request: Request,
  settings: CallSettings = {},
): Promise<Response> {
  return new Promise<Response>((resolve, reject) => {
    const call = caller.grpc.makeUnaryRequest(
      definition.path,
      definition.requestSerialize,
      definition.responseDeserialize,
      request,
      caller[callMetadata](),
      callOptions(settings),
      (error: ServiceError | null, response?: Response) => {
        settings.signal?.removeEventListener("abort", cancel);
        if (error !== null) {
          reject(toOcccError(error));
        } else if (response === undefined) {
          reject(toOcccError({ code: 13, details: "occcd sent no response", metadata: new Metadata() }));
        } else {
          resolve(response);
        }
      },
    );
    const cancel = (): void => call.cancel();
    settings.signal?.addEventListener("abort", cancel, { once: true });
  });
}

/** Call options for grpc-js from per-call settings. */
export function callOptions(settings: CallSettings): Partial<CallOptions> {
  return settings.timeoutMs === undefined ? {} : { deadline: Date.now() + settings.timeoutMs };
}
