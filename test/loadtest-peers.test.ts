/**
 * Our load testers measure other trackers too: opentracker (Debian; .ci/run installs it) and the
 * bittorrent-tracker npm server. A codec bug symmetric in our own client and server would pass
 * our other tests; a third-party server exposes it.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {chmodSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import Server from 'bittorrent-tracker/server'
import {defaultsOf, loadtestHttpSchema, loadtestUdpSchema, type LoadtestHttpConfig, type LoadtestUdpConfig} from '../src/config/index.js'
import {runHttpLoadtest} from '../loadtest/http.js'
import {announcePath} from '../src/protocol/http/client.js'
import {loadtestInfoHashList} from '../loadtest/model.js'
import {runUdpLoadtest} from '../loadtest/udp.js'
import {tempDir} from './harness.js'

function udpRun(port: number): LoadtestUdpConfig {
  const c = defaultsOf(loadtestUdpSchema) as LoadtestUdpConfig
  c.server_address = `127.0.0.1:${port}`
  c.warmup = 0
  c.duration = 2
  c.network.requests_in_flight_per_socket = 8
  c.requests.number_of_torrents = 50
  c.requests.number_of_peers = 500
  return c
}

function httpRun(port: number): LoadtestHttpConfig {
  const c = defaultsOf(loadtestHttpSchema) as LoadtestHttpConfig
  c.server_address = `127.0.0.1:${port}`
  c.warmup = 0
  c.duration = 2
  c.network.connections = 4
  c.requests.number_of_torrents = 50
  c.requests.number_of_peers = 500
  return c
}

const hasOpentracker = spawnSync('sh', ['-c', 'command -v opentracker']).status === 0

test('loadtest udp and http against opentracker: answers counted, peers returned, nothing unanswered', {
  skip: hasOpentracker ? false : 'opentracker is not installed (apt-get install opentracker; .ci/run does)',
}, async () => {
  const dir = tempDir()
  chmodSync(dir, 0o755) // opentracker drops to "nobody" and reads the whitelist inside its chroot
  writeFileSync(join(dir, 'whitelist.txt'), loadtestInfoHashList(udpRun(0)), {mode: 0o644})
  const port = 26_000 + (process.pid % 3000)
  const child: ChildProcess = spawn('opentracker', ['-i', '127.0.0.1', '-p', String(port), '-P', String(port), '-d', dir, '-w', 'whitelist.txt'], {
    stdio: 'ignore',
  })
  try {
    // opentracker answers before it has read its whitelist: wait until a listed hash is accepted.
    const listed = loadtestInfoHashList(udpRun(0)).split('\n')[0]
    const path = announcePath({infoHash: Buffer.from(listed, 'hex'), peerId: Buffer.alloc(20, 1), port: 1, left: 0})
    let accepted = false
    for (let i = 0; i < 100 && !accepted; i++) {
      await sleep(100)
      const body = await fetch(`http://127.0.0.1:${port}${path}`)
        .then(r => r.arrayBuffer())
        .catch(() => undefined)
      accepted = body !== undefined && !Buffer.from(body).toString('latin1').includes('failure reason')
    }
    assert.ok(accepted, 'opentracker accepts a whitelisted hash within 10 s')
    const u = await runUdpLoadtest(udpRun(port))
    assert.ok(u.responses.announce > 50, JSON.stringify(u))
    assert.equal(u.responses.error, 0, JSON.stringify(u.errors))
    assert.equal(u.responses.malformed, 0, JSON.stringify(u.malformed))
    assert.ok(u.extra['peers per announce'] > 1)
    const h = await runHttpLoadtest(httpRun(port))
    assert.ok(h.responses.announce > 50, JSON.stringify(h))
    assert.equal(h.responses.malformed, 0, JSON.stringify(h.malformed))
    assert.ok(h.responses.scrape > 0)
    assert.equal(h.responses.error, 0, JSON.stringify(h.errors))
    assert.ok(h.extra['peers per announce'] > 1)
  } finally {
    child.kill('SIGTERM')
  }
})

test('opentracker whose whitelist did not load: its 8-byte announce replies are counted as malformed and named', {
  skip: hasOpentracker ? false : 'opentracker is not installed (apt-get install opentracker; .ci/run does)',
}, async () => {
  const dir = tempDir()
  chmodSync(dir, 0o755)
  const port = 29_000 + (process.pid % 3000)
  // -w names a file that is not in -d: opentracker starts anyway and refuses every torrent.
  const child: ChildProcess = spawn('opentracker', ['-i', '127.0.0.1', '-p', String(port), '-P', String(port), '-d', dir, '-w', 'missing.txt'], {
    stdio: 'ignore',
  })
  try {
    let up = false
    for (let i = 0; i < 50 && !up; i++) {
      await sleep(100)
      up = await fetch(`http://127.0.0.1:${port}/scrape`).then(
        () => true,
        () => false,
      )
    }
    assert.ok(up, 'opentracker answers within 5 s')
    const config = udpRun(port)
    config.duration = 1
    const u = await runUdpLoadtest(config)
    assert.equal(u.responses.announce, 0)
    assert.ok(u.malformed['an announce reply of 8 bytes (20 at least)'] > 100, JSON.stringify(u))
    assert.ok(u.totalResponsesPerSecond > 100, 'the replies are counted, not dropped')
    assert.match(
      u.warnings.join('\n'),
      /^no announce got a usable reply \([\d,]+ scrapes did\); besides those: .*did its -w file load \(a relative path needs -d DIR\)\?$/,
    )
  } finally {
    child.kill('SIGTERM')
  }
})

test('loadtest udp and http against the bittorrent-tracker npm server', async () => {
  const server = new Server({udp: true, http: true, ws: false, stats: false})
  server.on('warning', () => {})
  server.on('error', () => {})
  const port = 27_000 + (process.pid % 3000)
  await new Promise<void>(resolve => server.listen(port, {http: '127.0.0.1', udp: '127.0.0.1'} as unknown as string, () => resolve()))
  try {
    const u = await runUdpLoadtest(udpRun(port))
    assert.ok(u.responses.announce > 20, JSON.stringify(u))
    assert.ok(u.responses.scrape > 0, JSON.stringify(u))
    assert.equal(u.responses.malformed, 0, JSON.stringify(u.malformed))
    assert.ok(u.extra['peers per announce'] > 1)
    const h = await runHttpLoadtest(httpRun(port))
    assert.ok(h.responses.announce > 20, JSON.stringify(h))
    assert.equal(h.responses.error, 0, JSON.stringify(h.errors))
    assert.ok(h.extra['peers per announce'] > 1)
  } finally {
    await new Promise<void>(resolve => server.close(() => resolve()))
  }
})
