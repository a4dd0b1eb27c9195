/**
 * End to end over WebRTC: two webtorrent library clients (separate processes, DHT/LSD/uTP off)
 * find each other only through our WebTorrent tracker, over ws:// and wss://, and move a file
 * byte-identically over a WebRTC data channel. The webtorrent package lives in its own install
 * under test/e2e/webtorrent (`npm run test:e2e` installs it).
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {randomFillSync} from 'node:crypto'
import {spawn, type ChildProcess} from 'node:child_process'
import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {setTimeout as sleep} from 'node:timers/promises'
import {makeCertificate} from '../certs.js'
import {tempDir} from '../harness.js'

const root = fileURLToPath(new URL('../../../', import.meta.url))
const script = join(root, 'test/e2e/webtorrent/transfer.mjs')
const installed = existsSync(join(root, 'test/e2e/webtorrent/node_modules/webtorrent'))
const skip = installed ? false : 'webtorrent is not installed: npm ci --prefix test/e2e/webtorrent --ignore-scripts (npm run test:e2e does)'

function start(args: string[], env: NodeJS.ProcessEnv): {child: ChildProcess; out: () => string} {
  const child = spawn(process.execPath, args, {env: {...process.env, ...env}, stdio: ['ignore', 'pipe', 'pipe']})
  let out = ''
  child.stdout!.on('data', d => (out += d))
  child.stderr!.on('data', d => (out += d))
  return {child, out: () => out}
}

async function waitFor(p: {child: ChildProcess; out: () => string}, pattern: RegExp, ms: number, what: string): Promise<string> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    const m = pattern.exec(p.out())
    if (m) return m[0]
    if (p.child.exitCode !== null) break
    await sleep(100)
  }
  throw new Error(`${what}: nothing within ${ms / 1000} s; output:\n${p.out().slice(-3000)}`)
}

async function webrtcTransfer(tls: boolean): Promise<void> {
  const dir = tempDir('tracker-e2e-wt-')
  // Below the ephemeral range (see transfer.test.ts).
  const port = 31_100 + (process.pid % 800) * 2 + (tls ? 1 : 0)
  const cert = tls ? makeCertificate(dir, 'localhost') : undefined
  const config = join(dir, 'ws.toml')
  writeFileSync(
    config,
    `log_level = "debug"
pid_file = "${join(dir, 'ws.pid')}"
[network]
address_ipv4 = "127.0.0.1:${port}"
use_ipv6 = false
${cert ? `enable_tls = true\ntls_certificate_path = "${cert.cert}"\ntls_private_key_path = "${cert.key}"` : ''}
[metrics]
prometheus_endpoint_address = "127.0.0.1:0"
`,
  )
  const procs: {child: ChildProcess; out: () => string}[] = []
  try {
    const tracker = start([join(root, 'bin/run.js'), 'serve', 'ws', '-c', config], {})
    procs.push(tracker)
    await waitFor(tracker, /ws tracker listening/, 15_000, 'the tracker starts')
    const url = `${tls ? 'wss' : 'ws'}://${tls ? 'localhost' : '127.0.0.1'}:${port}`
    // The clients trust our self-signed certificate the way Node programs do.
    const env = cert ? {NODE_EXTRA_CA_CERTS: cert.cert} : {}
    const data = Buffer.alloc(4 * 1024 * 1024)
    randomFillSync(data)
    writeFileSync(join(dir, 'data.bin'), data)
    const seeder = start([script, 'seed', url, join(dir, 'data.bin')], env)
    procs.push(seeder)
    const line = await waitFor(seeder, /\{"torrent":"[^"]+"\}/, 30_000, 'the seeder is ready')
    writeFileSync(join(dir, 'data.torrent'), Buffer.from(JSON.parse(line).torrent, 'base64'))
    mkdirSync(join(dir, 'out'))
    const leecher = start([script, 'leech', url, join(dir, 'data.torrent'), join(dir, 'out')], env)
    procs.push(leecher)
    const result = JSON.parse(await waitFor(leecher, /\{"ok".*\}/, 90_000, `the leecher downloads (tracker log:\n${tracker.out().slice(-2000)})`))
    assert.equal(result.ok, true, JSON.stringify(result))
    assert.deepEqual(result.wires, ['webrtc'], 'the data came over WebRTC')
    assert.ok(readFileSync(join(dir, 'out', 'data.bin')).equals(data), 'byte-identical')
  } finally {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL')
  }
}

test('ws:// tracker: two webtorrent clients transfer a file over WebRTC', {skip}, () => webrtcTransfer(false))
test('wss:// tracker (self-signed, trusted with NODE_EXTRA_CA_CERTS): webtorrent over WebRTC', {skip}, () => webrtcTransfer(true))
