#!/usr/bin/env node
// Entry point of the `tracker` CLI. It runs the compiled code in dist/ and never builds it: `npm
// ci` (the `prepare` script) and `npm run build` do. `--version` is answered here so that it can
// name the commit; everything else goes to oclif.
import {existsSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

if (!existsSync(new URL('../dist/src/version.js', import.meta.url))) {
  process.stderr.write(
    `tracker: ${fileURLToPath(new URL('../dist/', import.meta.url))} is missing or incomplete: run \`npm run build\` in the clone (\`npm ci\` builds it unless given --ignore-scripts)\n`,
  )
  process.exit(1)
}
const argv = process.argv.slice(2)
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
  const {versionLine} = await import('../dist/src/version.js')
  process.stdout.write(versionLine() + '\n')
} else {
  // oclif wraps error text at 80 columns when stderr is not a terminal; a log or a script wants
  // whole lines. OCLIF_COLUMNS is read once, as @oclif/core loads; it is removed again so that the
  // tracker's processes do not inherit it, and help gets its own width back (src/cli/hooks.ts).
  const unwrap = !process.stderr.isTTY && process.env.OCLIF_COLUMNS === undefined
  if (unwrap) process.env.OCLIF_COLUMNS = '10000'
  const {execute} = await import('@oclif/core')
  if (unwrap) delete process.env.OCLIF_COLUMNS
  await execute({dir: import.meta.url})
}
