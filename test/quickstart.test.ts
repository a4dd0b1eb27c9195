/**
 * The quick start (issue 15 item 1): README.md and package.json agree on it, the package has a
 * name of its own, and `npm start` serves UDP. How fast it starts on a fresh clone is measured by
 * `npm run bench -- quickstart`, not here.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {spawn, spawnSync} from 'node:child_process'
import {copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync} from 'node:fs'
import {join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {setTimeout as sleep} from 'node:timers/promises'
import {quickStartCommands, readmeServeCommand} from '../loadtest/bench/quickstart.js'
import {freePort, groupMembers} from '../loadtest/bench/proc.js'
import {readStatus} from '../src/process/status.js'
import {tempDir, UdpClient} from './harness.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const readme = readFileSync(join(root, 'README.md'), 'utf8')
interface PackageJson {
  name: string
  bin: Record<string, string>
  scripts: Record<string, string>
  oclif: {bin: string}
}
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as PackageJson

test('the package has a name of its own; the command it installs is still tracker, and the lock file agrees', () => {
  // `npx NAME` outside the clone runs whatever the registry has under NAME: `tracker` is someone else's.
  assert.notEqual(pkg.name, 'tracker')
  assert.notEqual(pkg.name, pkg.oclif.bin)
  assert.equal(pkg.oclif.bin, 'tracker')
  assert.deepEqual(Object.keys(pkg.bin), ['tracker'])
  assert.equal(resolve(root, pkg.bin.tracker), join(root, 'bin', 'run.js'))
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {name: string; packages: Record<string, {name?: string}>}
  assert.equal(lock.name, pkg.name)
  assert.equal(lock.packages[''].name, pkg.name)
})

test("the README's quick start is `npm ci && npm start` and `npm ci && npm test`, and npm start is tracker serve udp", () => {
  assert.deepEqual(quickStartCommands(readme), ['npm ci && npm start', 'npm ci && npm test'])
  assert.deepEqual(readmeServeCommand(readme), ['npm', 'start'])
  // The script runs the bin the package installs, with no build step in front of it.
  assert.equal(pkg.scripts.start, `node ${pkg.bin.tracker.replace(/^\.\//, '')} serve udp`)
  assert.ok(pkg.scripts.prepare.includes('tsc'), 'npm ci builds dist/ (prepare)')
  assert.throws(() => readmeServeCommand('## Quick start\n\n```sh\nnpx tracker serve udp\n```\n\n## Next\n'), /not "npm ci && COMMAND"/)
})

test('no document or help text tells users to run `npx tracker`', () => {
  const files = ['README.md', 'ARCHITECTURE.md', 'contrib/README.md', 'oclif.manifest.json']
  const sources = (dir: string): string[] =>
    readdirSync(join(root, dir), {recursive: true, withFileTypes: true})
      .filter(e => e.isFile() && e.name.endsWith('.ts'))
      .map(e => join(e.parentPath, e.name).slice(root.length))
  for (const file of [...files, ...sources('src'), ...sources('commands')]) {
    const text = readFileSync(join(root, file), 'utf8')
    // The README may warn against it, in those words; nothing may show it as a command.
    const uses = text.split('\n').filter(line => /npx tracker\b/.test(line) && !/do not type `npx tracker`/.test(line))
    assert.deepEqual(uses, [], file)
  }
})

test('`npm start -- FLAGS` serves UDP with the flags and config passed through', async () => {
  const dir = tempDir()
  const port = await freePort('udp')
  const pidFile = join(dir, 'tracker.pid')
  const config = join(dir, 'udp.toml')
  writeFileSync(config, `pid_file = "${pidFile}"\nlog_level = "warn"\n`)
  const child = spawn('npm', ['start', '--', '-c', config, '--ipv4', `127.0.0.1:${port}`, '--no-ipv6', '--metrics', '127.0.0.1:0'], {
    cwd: root,
    detached: true, // npm, its shell and the tracker: one group, stopped together
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', d => (output += d))
  child.stderr!.on('data', d => (output += d))
  const client = await UdpClient.open(4, port)
  try {
    for (let i = 0; i < 300 && !readStatus(pidFile) && child.exitCode === null; i++) await sleep(50)
    const status = readStatus(pidFile)
    assert.ok(status, `the tracker started:\n${output}`)
    assert.match(status.listening[0], new RegExp(`^udp 127\\.0\\.0\\.1:${port} `))
    assert.equal(status.listening.length, 2, 'IPv4 and metrics only: --no-ipv6 reached the tracker')
    assert.equal((await client.connect()).length, 8)
  } finally {
    client.close()
    try {
      process.kill(-child.pid!, 'SIGTERM')
    } catch {
      // already gone
    }
    for (let i = 0; i < 100 && groupMembers(child.pid!).length > 0; i++) await sleep(50)
    if (groupMembers(child.pid!).length > 0) process.kill(-child.pid!, 'SIGKILL')
  }
})

test('bin/run.js without dist/ says to build it, without a stack trace', () => {
  const dir = tempDir()
  mkdirSync(join(dir, 'bin'))
  copyFileSync(join(root, 'bin', 'run.js'), join(dir, 'bin', 'run.js'))
  const r = spawnSync(process.execPath, [join(dir, 'bin', 'run.js'), 'serve', 'udp'], {encoding: 'utf8', timeout: 30_000})
  assert.equal(r.status, 1)
  assert.match(r.stderr, /^tracker: .*dist\/ is missing or incomplete: run `npm run build`/)
  assert.doesNotMatch(r.stderr, /^\s+at /m)
})
