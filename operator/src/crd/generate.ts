/** `npm run crd:generate`: writes the CRD files from operator/src/crd/schema.ts. */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { CHART_CRD_FILE, CRD_FILE, renderChartCrdTemplate, renderCrdYaml } from "./render.ts";

const root = resolve(import.meta.dirname, "../../..");
for (const [file, text] of [
  [CRD_FILE, renderCrdYaml()],
  [CHART_CRD_FILE, renderChartCrdTemplate()],
] as const) {
  const path = resolve(root, file);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
  process.stdout.write(`wrote ${file}\n`);
}
