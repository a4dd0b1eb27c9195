/**
 * End to end in real browsers: two headless Chromiums (Debian's `chromium`, driven over the
 * DevTools protocol by cdp.ts) move a file with webtorrent's browser bundle through our ws://
 * tracker with 1 and 2 workers; the leecher's SHA-1 of what it received must be the SHA-1 of
 * the file generated here. Each case runs in browser-case.ts, inside `unshare -n` where the
 * kernel allows it, so that loopback is the only interface ICE can see.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {createHash, randomFillSync} from 'node:crypto'
import {execFileSync, spawn} from 'node:child_process'
import {accessSync, constants, existsSync, writeFileSync} from 'node:fs'
import {delimiter, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {tempDir} from '../harness.js'
import type {CaseResult} from './browser-case.js'

const root = fileURLToPath(new URL('../../../', import.meta.url))
const caseScript = fileURLToPath(new URL('./browser-case.js', import.meta.url))
/** Per case: two browser launches, seeding and the download, with room for a loaded machine. */
const CASE_LIMIT_MS = 150_000
const FILE_BYTES = 2 * 1024 * 1024

function findOnPath(name: string): string | undefined {
  for (const d of (process.env.PATH ?? '').split(delimiter)) {
    try {
      accessSync(join(d, name), constants.X_OK)
      return join(d, name)
    } catch {}
  }
  return undefined
}

const chromium = findOnPath('chromium')
const bundleInstalled = existsSync(join(root, 'test/e2e/webtorrent/node_modules/webtorrent/dist/webtorrent.min.js'))
const skip = !chromium
  ? 'chromium is not installed (apt-get install chromium; .ci/run does)'
  : !bundleInstalled
    ? 'webtorrent is not installed: npm ci --prefix test/e2e/webtorrent --ignore-scripts (npm run test:e2e does)'
    : false

/**
 * The command prefix that runs a case with loopback as the only interface: `unshare -n` as
 * root, else `unshare -rn` (a user namespace) where unprivileged ones are allowed, else none
 * (then ICE also gathers the other interfaces' addresses; the transfer still works, less
 * strictly isolated). The reason for no namespace goes into the test's diagnostics.
 */
function isolation(): {prefix: string[]; note: string} {
  const upLo = ['sh', '-c', 'ip link set lo up && exec "$0" "$@"']
  const reasons: string[] = []
  for (const flags of ['-n', '-rn']) {
    try {
      execFileSync('unshare', [flags, ...upLo, 'true'], {stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000})
      return {prefix: ['unshare', flags, ...upLo], note: `network namespace (unshare ${flags}), loopback only`}
    } catch (e) {
      const err = e as {stderr?: Buffer; message: string}
      reasons.push(`unshare ${flags}: ${err.stderr?.toString().trim() || err.message}`)
    }
  }
  return {prefix: [], note: `no network namespace (${reasons.join('; ')}): the browsers also see this machine's other interfaces`}
}

function runCase(prefix: string[], workers: number, file: string, dir: string): Promise<{code: number | null; stdout: string; stderr: string}> {
  const argv = [...prefix, process.execPath, caseScript, chromium!, String(workers), file, dir]
  // Its own process group, so that a case over time is ended with everything it started.
  const child = spawn(argv[0], argv.slice(1), {stdio: ['ignore', 'pipe', 'pipe'], detached: true})
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', d => (stdout += d))
  child.stderr.on('data', d => (stderr += d))
  return new Promise(resolve => {
    // SIGTERM first: the case kills its browsers and tracker (their own groups), then itself.
    const signal = (name: NodeJS.Signals): void => {
      try {
        process.kill(-child.pid!, name)
      } catch {} // already gone
    }
    const timer = setTimeout(() => {
      stderr = `the case did not end within ${CASE_LIMIT_MS / 1000} s\n${stderr}`
      signal('SIGTERM')
      setTimeout(() => signal('SIGKILL'), 5000).unref()
    }, CASE_LIMIT_MS)
    child.on('close', code => {
      clearTimeout(timer)
      resolve({code, stdout, stderr})
    })
  })
}

const isolated = skip ? {prefix: [], note: ''} : isolation()

for (const workers of [1, 2]) {
  test(`two headless Chromiums transfer a file with webtorrent's browser bundle through the ws:// tracker (socket_workers = ${workers})`, {skip}, async t => {
    t.diagnostic(isolated.note)
    const dir = tempDir('tracker-e2e-browser-')
    const data = randomFillSync(Buffer.alloc(FILE_BYTES))
    const file = join(dir, 'data.bin')
    writeFileSync(file, data)
    const started = Date.now()
    const {code, stdout, stderr} = await runCase(isolated.prefix, workers, file, dir)
    assert.equal(code, 0, `the browser case failed (exit ${code}):\n${stderr}`)
    const r = JSON.parse(stdout) as CaseResult
    t.diagnostic(`${Date.now() - started} ms (browsers up ${r.ms.launch} ms, seeding ${r.ms.seed} ms, download ${r.ms.leech} ms)`)
    const sha1 = createHash('sha1').update(data).digest('hex')
    assert.equal(r.seeded.sha1, sha1, 'the seeder page holds the generated file')
    assert.deepEqual(r.seeded.announce, [r.tracker], 'our tracker is the only announce URL')
    assert.deepEqual(r.received.announce, [r.tracker], "the leecher's only tracker is ours too")
    assert.equal(r.received.bytes, FILE_BYTES)
    assert.equal(r.received.sha1, sha1, 'the leecher received the seeded bytes')
    assert.ok(r.received.wires.length > 0 && r.received.wires.every(w => w === 'webrtc'), `the data came over WebRTC (${r.received.wires})`)
    // Per worker, in worker order: with 2 workers, connections "1+1" means the browsers' offers
    // and answers crossed between workers (the kernel spreads connections: not every run).
    const byWorker = (name: string): number[] => r.metrics.filter(l => l.startsWith(`tracker_${name}{`)).map(l => Number(l.split(' ').pop()))
    const gauges = ['connections', 'torrents', 'seeders', 'leechers'].map(g => `${g} ${byWorker(g).join('+')}`)
    t.diagnostic(`tracker after the download, by worker: ${gauges.join(', ')}`)
    // Both browsers hold the whole file. The seeder's answer to the offer carries no `left`: it
    // must not make it a leecher.
    const sum = (name: string): number => byWorker(name).reduce((a, b) => a + b, 0)
    assert.deepEqual({seeders: sum('seeders'), leechers: sum('leechers')}, {seeders: 2, leechers: 0}, 'both browsers count as seeders')
  })
}
