// Checks the hand-written TypeScript (src/, test/, bench/; ts-proto writes
// generated/, which is not checked): no `any`, and every relative import ends in ".js" (ESM
// resolution in Node needs the extension). Exits 1 listing each offence.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));

function* sources(folder) {
  for (const name of readdirSync(folder)) {
    const path = join(folder, name);
    if (statSync(path).isDirectory()) {
      yield* sources(path);
    } else if (name.endsWith(".ts")) {
      yield path;
    }
  }
}

const ANY = /(:\s*any\b|\bas\s+any\b|<any>|\bany\[\]|[<,(|&]\s*any\s*[>,)|&])/;
const RELATIVE_IMPORT = /\b(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']*)["']/g;
const offences = [];
for (const folder of ["src", "test", "bench"]) {
  let files;
  try {
    files = [...sources(join(root, folder))];
  } catch {
    continue;
  }
  for (const file of files) {
    const lines = readFileSync(file, "utf8").split("\n");
    lines.forEach((line, index) => {
      const where = `${relative(root, file)}:${index + 1}`;
      const code = line.replace(/\/\/.*$/, "");
      if (ANY.test(code)) {
        offences.push(`${where}: uses \`any\` (use unknown and narrow it)`);
      }
      for (const match of code.matchAll(RELATIVE_IMPORT)) {
        if (!match[1].endsWith(".js")) {
          offences.push(`${where}: relative import "${match[1]}" needs its .js extension`);
        }
      }
    });
  }
}
if (offences.length > 0) {
  console.error(offences.join("\n"));
  process.exit(1);
}
console.log("lint: no `any`, every relative import ends in .js");
