#!/usr/bin/env node
// Entry point of the `tracker` CLI. `--version` is answered here so that it can
// name the commit; everything else goes to oclif.
const argv = process.argv.slice(2)
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
  const {versionLine} = await import('../dist/src/version.js')
  process.stdout.write(versionLine() + '\n')
} else {
  const {execute} = await import('@oclif/core')
  await execute({dir: import.meta.url})
}
