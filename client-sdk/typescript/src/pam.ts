/**
 * PAM biometrics (a fingerprint reader through `pam_fprintd`, or any stack
 * the daemon is configured with): the daemon streams the PAM conversation,
 * the app shows each prompt and answers questions.
 *
 * Invariant: answers go only to the stream they were asked on; the call ends
 * with a session (login), an elevation, or an {@link OcccError}.
 */
import { type ClientDuplexStream } from "@grpc/grpc-js";

import { isServiceError, type OcccClient } from "./client.js";
import { OcccError, toOcccError } from "./errors.js";
import { callMetadata } from "./rpc.js";
import type { AuthSession, LoginResponse } from "../generated/occc/v1/auth.js";
import {
  BiometricService,
  PamPromptKind,
  type PamClientMessage,
  type PamServerMessage,
} from "../generated/occc/v1/biometric.js";

/** One PAM message for the person. */
export interface PamPromptEvent {
  readonly kind: "info" | "error" | "question" | "secret";
  readonly text: string;
}

/**
 * Relays PAM's conversation. `ask` is called for questions ("secret" ones
 * must not be echoed) and returns the answer; `show` for messages.
 */
export interface PamPrompter {
  show(prompt: PamPromptEvent): void;
  ask(prompt: PamPromptEvent): Promise<string>;
}

/** Logs in through the daemon's PAM stack; returns occcd's answer. */
export async function pamLogin(client: OcccClient, username: string, prompter: PamPrompter): Promise<LoginResponse> {
  const outcome = await converse(client, BiometricService.pamLogin, username, prompter);
  if (outcome.login === undefined) {
    throw new OcccError("occcd ended the PAM login without a session", 13);
  }
  return outcome.login;
}

/** Elevates the client's session through the daemon's PAM stack. */
export async function pamElevate(client: OcccClient, prompter: PamPrompter): Promise<AuthSession> {
  const outcome = await converse(client, BiometricService.pamElevate, "", prompter);
  if (outcome.elevated === undefined) {
    throw new OcccError("occcd ended the PAM elevation without elevating", 13);
  }
  return outcome.elevated;
}

interface BidiDefinition {
  readonly path: string;
  readonly requestSerialize: (value: PamClientMessage) => Buffer;
  readonly responseDeserialize: (value: Buffer) => PamServerMessage;
}

async function converse(
  client: OcccClient,
  definition: BidiDefinition,
  username: string,
  prompter: PamPrompter,
): Promise<PamServerMessage> {
  const call: ClientDuplexStream<PamClientMessage, PamServerMessage> = client.grpc.makeBidiStreamRequest(
    definition.path,
    definition.requestSerialize,
    definition.responseDeserialize,
    client[callMetadata](),
  );
  call.write({ start: { username }, answer: undefined });
  try {
    for await (const item of call) {
      const message = item as PamServerMessage;
      if (message.login !== undefined || message.elevated !== undefined) {
        return message;
      }
      if (message.prompt === undefined) {
        continue;
      }
      const prompt = toPromptEvent(message.prompt.kind, message.prompt.text);
      if (prompt.kind === "question" || prompt.kind === "secret") {
        const text = await prompter.ask(prompt);
        call.write({ start: undefined, answer: { text } });
      } else {
        prompter.show(prompt);
      }
    }
  } catch (err) {
    throw isServiceError(err) ? toOcccError(err) : err;
  } finally {
    call.end();
    call.cancel();
  }
  throw new OcccError("occcd closed the PAM conversation without an outcome", 13);
}

function toPromptEvent(kind: PamPromptKind, text: string): PamPromptEvent {
  switch (kind) {
    case PamPromptKind.PAM_PROMPT_KIND_ERROR:
      return { kind: "error", text };
    case PamPromptKind.PAM_PROMPT_KIND_QUESTION_VISIBLE:
      return { kind: "question", text };
    case PamPromptKind.PAM_PROMPT_KIND_QUESTION_HIDDEN:
      return { kind: "secret", text };
    default:
      return { kind: "info", text };
  }
}
