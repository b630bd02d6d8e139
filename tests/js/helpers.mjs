// Shared by the node tests: the vector files and a check-name matcher.

import { readFileSync } from "node:fs";
import assert from "node:assert/strict";

export const VECTORS = new URL("../vectors/", import.meta.url);

/** A vector file; the integer `fields` come as strings (2^64 - 1 is no JavaScript number). */
export function load(name, ...fields) {
  let text = readFileSync(new URL(name, VECTORS), "utf8");
  for (const field of fields) {
    text = text.replaceAll(new RegExp(`"${field}": (\\d+)`, "g"), `"${field}": "$1"`);
  }
  return JSON.parse(text);
}

/** Assert that `run` rejects (sync or async) with an Error whose message starts "check: ". */
export async function assertRejects(run, check) {
  await assert.rejects(
    async () => run(),
    (error) => {
      assert.ok(error instanceof Error);
      assert.equal(error.message.split(":")[0], check, error.message);
      return true;
    },
  );
}
