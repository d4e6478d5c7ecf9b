/**
 * Bundles the plugin into one executable file, dist/kubectl-zerofs (or the path given as the
 * first argument): the plugin, the operator modules it uses and @kubernetes/client-node in one
 * ES module with a `#!/usr/bin/env node` line. Copy it onto PATH as kubectl-zerofs and kubectl
 * runs it as `kubectl zerofs`; it needs Node.js 24 (22.15 at least: a bundled dependency uses zlib's zstd) and nothing else.
 */
import { chmod, mkdir } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { build } from "esbuild";

const root = resolve(import.meta.dirname, "../..");
const out = resolve(process.argv[2] ?? join(root, "dist/kubectl-zerofs"));
await mkdir(dirname(out), { recursive: true });
await build({
  entryPoints: [join(root, "operator/plugin/src/main.ts")],
  outfile: out,
  bundle: true,
  platform: "node",
  target: "node24",
  format: "esm",
  // Dependencies written as CommonJS call require(); give the ES module one.
  banner: { js: "import { createRequire as __zerofsCreateRequire } from 'node:module'; const require = __zerofsCreateRequire(import.meta.url);" },
  legalComments: "eof",
  logLevel: "warning",
});
await chmod(out, 0o755);
process.stdout.write(`wrote ${out}\n`);
