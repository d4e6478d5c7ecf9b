/**
 * The CRD ships twice (crds/ for kubectl, the chart's template for helm), both generated from
 * operator/src/crd/schema.ts. This fails when either file drifts from the source or from the
 * other; fix with `npm run crd:generate`.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { buildCrd } from "../src/crd/crd.ts";
import { CHART_CRD_FILE, CRD_FILE, renderChartCrdTemplate, renderCrdYaml } from "../src/crd/render.ts";

const root = resolve(import.meta.dirname, "../..");
const read = (f: string) => readFileSync(resolve(root, f), "utf8");

describe("CRD files", () => {
  it("crds/ matches the generator", () => {
    assert.equal(read(CRD_FILE), renderCrdYaml(), `${CRD_FILE} is stale: run npm run crd:generate`);
  });

  it("the chart's CRD template matches the generator", () => {
    assert.equal(read(CHART_CRD_FILE), renderChartCrdTemplate(), `${CHART_CRD_FILE} is stale: run npm run crd:generate`);
  });

  it("the chart's copy is the same CRD, behind crds.enabled, with Helm's keep policy", () => {
    const text = read(CHART_CRD_FILE);
    const lines = text.split("\n");
    assert.ok(lines.some((l) => l === "{{- if .Values.crds.enabled }}"));
    const body = lines.filter((l) => !l.startsWith("{{")).join("\n");
    const chartCrd = parse(body) as { metadata: { annotations?: Record<string, string> } };
    assert.equal(chartCrd.metadata.annotations?.["helm.sh/resource-policy"], "keep");
    delete chartCrd.metadata.annotations;
    assert.deepEqual(chartCrd, parse(read(CRD_FILE)));
    assert.deepEqual(parse(read(CRD_FILE)), JSON.parse(JSON.stringify(buildCrd())));
  });

  it("has the status subresource, printer columns and CEL rules", () => {
    const crd = buildCrd() as unknown as { spec: { versions: { subresources: unknown; additionalPrinterColumns: { name: string; priority?: number }[] }[] } };
    const v = crd.spec.versions[0]!;
    assert.deepEqual(v.subresources, { status: {} });
    assert.deepEqual(v.additionalPrinterColumns.map((c) => c.name).slice(0, 5), ["Ready", "Phase", "Server", "Age", "Message"]);
    assert.equal(v.additionalPrinterColumns.find((c) => c.name === "Message")?.priority, 1);
    const text = renderCrdYaml();
    for (const rule of ["self == oldSelf", "isCIDR(self)", "self.deletionPolicy != 'Delete'"]) assert.ok(text.includes(rule), rule);
  });
});
