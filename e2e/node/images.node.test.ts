/**
 * `make images` works: both Dockerfiles build on the local Node base image, the images run
 * their entry points as a non-root user (also with a read-only root filesystem, as the operator
 * runs the server), and the exported archives are docker archives naming the image.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { stat } from "node:fs/promises";
import { test } from "node:test";
import { promisify } from "node:util";
import { buildImages, podmanInspect, podmanRun } from "./images.ts";

const run = promisify(execFile);

test("the server image runs `zerofs --help` as uid 65532", { timeout: 30 * 60_000 }, async () => {
  const { server } = await buildImages();
  assert.equal(await podmanInspect(server.name, "{{.Config.User}}"), "65532:65532");
  const help = await podmanRun(server.name, ["--help"], ["--read-only"]);
  assert.equal(help.code, 0, `zerofs --help exited ${help.code}: ${help.stderr}`);
  assert.match(help.stdout, /zerofs/i);
  assert.match(help.stdout, /ZEROFS_/); // the configuration table's environment variables
  const id = await podmanRun(server.name, [], ["--entrypoint", "id"]);
  assert.equal(id.stdout.trim().split(" ")[0], "uid=65532(nonroot)");
});

test("the operator image starts the operator as uid 65532", { timeout: 30 * 60_000 }, async () => {
  const { operator } = await buildImages();
  assert.equal(await podmanInspect(operator.name, "{{.Config.User}}"), "65532:65532");
  // The operator has no --help; a contradictory setting makes it exit 2 with its configuration
  // error, which it can only print once its entry point and every module it imports loaded.
  const bad = await podmanRun(operator.name, [], ["--read-only", "-e", "LEASE_DURATION_SECONDS=5", "-e", "RENEW_DEADLINE_SECONDS=10"]);
  assert.equal(bad.code, 2, `operator exited ${bad.code}: ${bad.stderr}`);
  assert.match(bad.stderr, /^zerofs-operator: invalid configuration: RENEW_DEADLINE_SECONDS/);
  const id = await podmanRun(operator.name, [], ["--entrypoint", "id"]);
  assert.equal(id.stdout.trim().split(" ")[0], "uid=65532(nonroot)");
});

test("the archives are docker archives naming their image (for ctr images import)", { timeout: 30 * 60_000 }, async () => {
  const images = await buildImages();
  for (const img of [images.server, images.operator]) {
    assert.ok((await stat(img.archive)).size > 10 << 20, `${img.archive} is suspiciously small`);
    const { stdout } = await run("tar", ["-xOf", img.archive, "manifest.json"], { maxBuffer: 1 << 20 });
    const manifest = JSON.parse(stdout) as { RepoTags?: string[] }[];
    assert.deepEqual(manifest.map((m) => m.RepoTags), [[img.name]]);
  }
});
