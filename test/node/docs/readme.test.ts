import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
// @ts-expect-error -- a plain .mjs script without types
import { limitsTable } from "../../../scripts/limits.mjs";

describe("README", () => {
  it("prints the limits exactly as src/protocol/limits.ts defines them", () => {
    const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8");
    const table = /<!-- limits:start -->\n([\s\S]*?)\n<!-- limits:end -->/.exec(readme)?.[1];
    expect(table).toBe(limitsTable());
  });
});
