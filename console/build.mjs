// Builds the console (console/src → console/public/app) with esbuild: one small bundle, no framework
// beyond Preact. Run by `npm test`, `npm start` does not need it when the bundle is present.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const watch = process.argv.includes('--watch');
const result = await build({
  entryPoints: [join(here, 'src', 'main.tsx')],
  outdir: join(here, 'public', 'app'),
  bundle: true,
  format: 'esm',
  target: ['chrome110', 'safari15', 'firefox110'],
  minify: !watch,
  sourcemap: true,
  jsx: 'automatic',
  jsxImportSource: 'preact',
  metafile: true,
  logLevel: 'warning',
});
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
console.log(`console built: ${(bytes / 1024).toFixed(0)} KiB (with source maps)`);
