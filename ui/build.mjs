// Bundles src/ into dist/ (app.js, app.css from the modules' imports, index.html) for the astrolabe binary to embed;
// `node build.mjs DIR` writes into DIR instead.
// Deterministic: the same sources and lockfile give the same bytes (no timestamps, no hashes
// of absolute paths), so scripts/ui-build.sh --check can compare against the committed bundle.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";

const out = process.argv[2] ?? "dist";
mkdirSync(out, { recursive: true });
await build({
  entryPoints: ["src/main.ts"],
  outfile: `${out}/app.js`,
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  legalComments: "eof",
  sourcemap: false,
  charset: "utf8",
  logLevel: "warning",
});
copyFileSync("static/index.html", `${out}/index.html`);
