// Generates generated/ from ../../proto with protoc (Debian's protobuf-compiler)
// and ts-proto: message types, enums and @grpc/grpc-js client constructors.
// The output is rebuilt on every build and never edited or committed.
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const protoRoot = join(root, "..", "..", "proto");
const out = join(root, "generated");
const plugin = join(root, "node_modules", ".bin", "protoc-gen-ts_proto");
const protos = readdirSync(join(protoRoot, "occc", "v1"))
  .filter((name) => name.endsWith(".proto"))
  .sort()
  .map((name) => join("occc", "v1", name));

const options = [
  "outputServices=grpc-js",
  "esModuleInterop=true",
  "importSuffix=.js",
  // int64/uint64 as number: sequences and millisecond times stay far below
  // 2^53; ts-proto throws rather than lose precision if one ever did not.
  "forceLong=number",
  "useDate=false",
  "env=node",
  // No toJSON/fromJSON: they are typed with `any`; the SDK needs none.
  "outputJsonMethods=false",
  "useExactTypes=false",
  "snakeToCamel=true",
  // DeepPartial & co. stay private to each file, so src/types.ts can re-export all.
  "exportCommonSymbols=false",
].join(",");

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
try {
  execFileSync(
    "protoc",
    [`--plugin=protoc-gen-ts_proto=${plugin}`, `--ts_proto_out=${out}`, `--ts_proto_opt=${options}`, `-I${protoRoot}`, ...protos],
    { stdio: "inherit" },
  );
} catch (err) {
  const missing = err instanceof Error && "code" in err && err.code === "ENOENT";
  console.error(
    missing
      ? "protoc not found: install Debian's protobuf-compiler (scripts/test does this as root)"
      : "protoc failed; see above",
  );
  process.exit(1);
}
