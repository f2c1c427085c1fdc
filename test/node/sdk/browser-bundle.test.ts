/**
 * The browser entry (`client/index.ts`) bundles for browsers with esbuild (the one wrangler installs)
 * without a single Node built-in, and stays small. The Node entry pulls `node:sqlite` and nothing else of Node.
 */
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import { build, type Metafile } from "esbuild";
import { describe, expect, it } from "vitest";

const entry = (path: string) => fileURLToPath(new URL(`../../../client/${path}`, import.meta.url));

async function bundle(path: string, platform: "browser" | "node") {
  const result = await build({
    entryPoints: [entry(path)],
    bundle: true,
    minify: true,
    format: "esm",
    platform,
    write: false,
    metafile: true,
    logLevel: "silent",
    ...(platform === "browser" && { target: "es2022" }),
  });
  const code = result.outputFiles[0]!.contents;
  return { code, metafile: result.metafile as Metafile, warnings: result.warnings };
}

describe("the SDK's bundles", () => {
  it("client/index.ts bundles for the browser with no Node built-ins, and reports its size", async () => {
    const { code, metafile, warnings } = await bundle("index.ts", "browser");
    expect(warnings).toEqual([]);
    const inputs = Object.keys(metafile.inputs);
    const imports = Object.values(metafile.inputs).flatMap((i) => i.imports.map((x) => x.path));
    expect(inputs.filter((p) => p.startsWith("node:") || /(^|\/)node_modules\/(zod|ws|@signalapp)\//.test(p))).toEqual([]);
    expect(imports.filter((p) => p.startsWith("node:") || /^(fs|path|crypto|os|net|tls|http|https|child_process|zlib|stream|buffer|url|util)$/.test(p))).toEqual([]);
    expect(inputs.some((p) => p.includes("client/crypto/session.ts"))).toBe(true);
    const text = new TextDecoder().decode(code);
    expect(text).not.toMatch(/\brequire\(["']/);
    const gzipped = gzipSync(code, { level: 9 }).length;
    console.log(`client/index.ts for browsers: ${(code.length / 1024).toFixed(1)} KiB minified, ${(gzipped / 1024).toFixed(1)} KiB minified+gzipped`);
    expect(gzipped).toBeLessThan(80 * 1024);
  });

  it("client/node.ts adds node:sqlite and no other Node module", async () => {
    const { metafile } = await bundle("node.ts", "node");
    const nodeImports = new Set(Object.values(metafile.inputs).flatMap((i) => i.imports.filter((x) => x.external).map((x) => x.path)));
    expect([...nodeImports]).toEqual(["node:sqlite"]);
  });
});
