// selftest.json as `make static` writes it, printed by scripts/vendor_static.py (standard
// library only) run by $TIPBOX_PYTHON, .venv/bin/python or python3.

import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const REPO = new URL("../../", import.meta.url);

export async function selftestVectors() {
  const venv = fileURLToPath(new URL(".venv/bin/python", REPO));
  const python = process.env.TIPBOX_PYTHON || (existsSync(venv) ? venv : "python3");
  const script = fileURLToPath(new URL("scripts/vendor_static.py", REPO));
  return JSON.parse(execFileSync(python, [script, "--print-selftest"], { encoding: "utf8" }));
}
