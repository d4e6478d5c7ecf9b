/**
 * docs/user-guide.md quotes the messages a user meets, by their exact words: every literal
 * fragment of a quoted message in its troubleshooting table must still be in the code
 * (placeholders such as <ns> and … stand for what varies), so a reworded message fails here
 * until the guide follows.
 */
import assert from "node:assert/strict";
import { globSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { it } from "node:test";

const ROOT = resolve(import.meta.dirname, "../..");
const MIN_FRAGMENT = 10;

it("every message quoted in the user guide's troubleshooting table is in the code", () => {
  const guide = readFileSync(join(ROOT, "docs/user-guide.md"), "utf8");
  const section = guide.slice(guide.indexOf("## Troubleshooting"));
  const code = ["server/src/**/*.ts", "operator/src/**/*.ts", "operator/plugin/src/**/*.ts"]
    .flatMap((p) => globSync(p, { cwd: ROOT }))
    .map((f) => readFileSync(join(ROOT, f), "utf8"))
    .join("\n");
  const rows = section.split("\n").filter((l) => l.startsWith("| ") && !l.startsWith("| you see") && !l.startsWith("|---"));
  assert.ok(rows.length >= 15, `${rows.length} rows`);
  let checked = 0;
  for (const row of rows) {
    const [, seen, where] = row.split(" | ").length > 2 ? ["", ...row.slice(2).split(" | ")] : [];
    if (!seen || /the client/.test(where ?? "")) continue; // the client's own words, not ours
    for (const [, quoted] of seen.matchAll(/`([^`]+)`/g)) {
      for (const fragment of quoted!.split(/…|<[^>]+>/).map((x) => x.trim())) {
        if (fragment.length < MIN_FRAGMENT) continue;
        assert.ok(code.includes(fragment), `the guide quotes ${JSON.stringify(fragment)} (row: ${seen}), which no source file says`);
        checked++;
      }
    }
  }
  assert.ok(checked >= 25, `${checked} fragments checked`);
});
