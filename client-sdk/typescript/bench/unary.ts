/**
 * Unary load from the TypeScript client: `node dist/bench/unary.js SOCKET
 * CONCURRENCY WARM_UP_MS WINDOW_MS` keeps CONCURRENCY `System/GetInfo` calls
 * in flight on one client (as the Electron app would) and prints one JSON
 * line: calls, errors, seconds, p50_us, p99_us. tests/benches/rpc.rs runs it
 * beside the Rust client against the same daemon.
 */
import { dirname } from "node:path";
import { performance } from "node:perf_hooks";
import { getuid } from "node:process";

import { OcccClient } from "../src/index.js";

const [socketPath, concurrencyText, warmUpText, windowText] = process.argv.slice(2);
if (socketPath === undefined || dirname(socketPath) === socketPath) {
  console.error("usage: unary.js SOCKET [CONCURRENCY] [WARM_UP_MS] [WINDOW_MS]");
  process.exit(2);
}
const concurrency = Number(concurrencyText ?? "16");
const warmUpMs = Number(warmUpText ?? "200");
const windowMs = Number(windowText ?? "500");

const client = await OcccClient.connect({ socketPath, expectedOwnerUid: getuid?.() ?? 0 });
const latenciesUs: number[] = [];
let errors = 0;
let measuring = false;
let stopAt = performance.now() + warmUpMs + windowMs;

async function worker(): Promise<void> {
  while (performance.now() < stopAt) {
    const started = performance.now();
    try {
      await client.system.getInfo({});
      if (measuring) {
        latenciesUs.push((performance.now() - started) * 1000);
      }
    } catch {
      if (measuring) {
        errors += 1;
      }
    }
  }
}

const workers = Array.from({ length: concurrency }, () => worker());
await new Promise((warm) => setTimeout(warm, warmUpMs));
measuring = true;
const windowStart = performance.now();
stopAt = windowStart + windowMs;
await Promise.all(workers);
const seconds = (performance.now() - windowStart) / 1000;
client.close();

latenciesUs.sort((a, b) => a - b);
const percentile = (q: number): number => latenciesUs[Math.min(latenciesUs.length - 1, Math.floor(q * latenciesUs.length))] ?? 0;
console.log(
  JSON.stringify({ calls: latenciesUs.length, errors, seconds, p50_us: percentile(0.5), p99_us: percentile(0.99) }),
);
