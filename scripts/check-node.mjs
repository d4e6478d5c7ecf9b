// Fails loudly when npm scripts run on anything but the project's pinned Node 24
// (e.g. after `npm ci --ignore-scripts`, which skips the `node` package's preinstall).
if (!process.version.startsWith("v24.")) {
  process.stderr.write(
    `zerofs needs Node.js 24 (found ${process.version}). Run \`npm install\` (with scripts enabled) so the pinned "node" devDependency provides it.\n`,
  );
  process.exit(1);
}
