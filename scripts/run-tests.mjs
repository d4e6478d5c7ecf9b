// Runs the project's test files with node's built-in runner on Node 24 (native TypeScript
// type stripping: no build step). Suites: unit (fast, in-process), s3 (starts a real
// versitygw S3 server per file), k8s (starts a real etcd + kube-apiserver +
// kube-controller-manager per file), monitoring (the chart's alerts and dashboard: promtool and a
// real Prometheus, built once per machine by scripts/tools/prometheus-tools.sh), all.
import { spawnSync } from "node:child_process";
import { globSync } from "node:fs";

const suite = process.argv[2] ?? "all";
const patterns = {
  unit: ["server/test/**/*.test.ts", "operator/test/**/*.test.ts"],
  s3: ["server/test/**/*.s3.test.ts"],
  k8s: ["operator/test/**/*.k8s.test.ts"],
  monitoring: ["test/monitoring/**/*.test.ts"],
};
let files;
if (suite === "all") files = [...patterns.unit, ...patterns.monitoring].flatMap((p) => globSync(p));
else if (patterns[suite]) files = patterns[suite].flatMap((p) => globSync(p));
else {
  process.stderr.write(`unknown suite ${suite}; expected one of: unit, s3, k8s, monitoring, all\n`);
  process.exit(2);
}
if (suite === "unit") files = files.filter((f) => !f.endsWith(".s3.test.ts") && !f.endsWith(".k8s.test.ts"));
files = [...new Set(files)].sort();
if (files.length === 0) {
  process.stderr.write(`no test files found for suite ${suite}\n`);
  process.exit(1);
}
const extra = process.argv.slice(3);
const r = spawnSync(
  process.execPath,
  ["--test", "--test-concurrency=2", "--test-reporter=spec", ...extra, ...files],
  { stdio: "inherit" },
);
process.exit(r.status ?? 1);
