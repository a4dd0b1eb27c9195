#!/usr/bin/env node
// Entry point of the `tracker` CLI. `--version` is answered here so that it can
// name the commit; everything else goes to oclif.
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
