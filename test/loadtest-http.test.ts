import {test} from 'node:test'
import assert from 'node:assert/strict'
import {join} from 'node:path'
import {writeFileSync} from 'node:fs'
import {execFile} from 'node:child_process'
import http from 'node:http'
import net from 'node:net'
import {fileURLToPath} from 'node:url'
import {defaultsOf, loadtestHttpSchema, type LoadtestHttpConfig} from '../src/config/index.js'
import {runHttpLoadtest} from '../loadtest/http.js'
import {formatReport} from '../loadtest/report.js'
import {startHttpTracker, tempDir} from './harness.js'
import {makeCertificate} from './certs.js'

function smallRun(port: number, host = '127.0.0.1'): LoadtestHttpConfig {
  const config = defaultsOf(loadtestHttpSchema) as LoadtestHttpConfig
  config.server_address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
  config.warmup = 0
  config.duration = 2
  config.network.connections = 8
  config.requests.number_of_torrents = 50
  config.requests.number_of_peers = 500
  return config
}

/** One second against a fake. */
function quick(port: number): LoadtestHttpConfig {
  const config = smallRun(port)
  config.duration = 1
  return config
}

/** A fake HTTP tracker on 127.0.0.1 that answers every request with `status` and `body`, and counts the requests. */
async function fakeTracker(status: number, body: string): Promise<{port: number; received: () => number; close(): Promise<void>}> {
  let received = 0
  const server = http.createServer((_req, res) => {
    received++
    res.writeHead(status, {'content-type': 'text/plain'}).end(body)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => resolve()))
  return {
    port: (server.address() as net.AddressInfo).port,
    received: () => received,
    close: () => new Promise<void>(resolve => server.close(() => resolve(server.closeAllConnections()))),
  }
}

test('loadtest http: keep-alive and a connection per request, IPv4 and IPv6; summary and progress', async () => {
  const t = await startHttpTracker()
  try {
    for (const [keepAlive, host, port] of [
      [true, '127.0.0.1', t.port4],
      [false, '::1', t.port6],
    ] as const) {
      const config = smallRun(port, host)
      config.network.keep_alive = keepAlive
      const lines: string[] = []
      const r = await runHttpLoadtest(config, {onProgress: l => lines.push(l)})
      assert.ok(r.responses.announce > 50, JSON.stringify(r))
      assert.ok(r.responses.scrape > 0)
      assert.equal(r.responses.error, 0, JSON.stringify(r.errors))
      assert.equal(r.responses.malformed, 0, JSON.stringify(r.malformed))
      assert.equal(r.unanswered, 0)
      assert.equal(r.problem, undefined)
      assert.deepEqual(r.warnings, [])
      assert.ok(r.extra['peers per announce'] > 1, 'a populated swarm returns peers')
      assert.ok(r.latencyMs.p99 >= r.latencyMs.p50 && r.latencyMs.p50 > 0)
      assert.ok(lines.length >= 1 && /announce [\d,]+\/s/.test(lines[0]), lines.join('\n'))
      assert.match(formatReport(r), /responses\/s \(total\)/)
      assert.match(formatReport(r), /generator CPU \(cores\) +[\d.]+ for 1 thread\(s\), [\d.]+ us per response/)
    }
  } finally {
    await t.stop()
  }
})

test('loadtest http: the warm-up is sent but left out; every request the tracker saw is counted in one or the other', async () => {
  const fake = await fakeTracker(200, 'd8:intervali60e5:peers0:5:filesdee')
  try {
    const config = smallRun(fake.port)
    config.warmup = 1
    config.duration = 1
    const lines: string[] = []
    const r = await runHttpLoadtest(config, {onProgress: l => lines.push(l)})
    assert.equal(r.problem, undefined, r.problem)
    assert.ok(r.warmup.seconds >= 0.9 && r.warmup.requestsSent > 0 && r.warmup.replies > 0, JSON.stringify(r.warmup))
    assert.equal(r.warmup.requestsSent + r.requestsSent, fake.received())
    assert.ok(r.durationSeconds >= 0.9 && r.durationSeconds < 1.5)
    // Replies to the requests in flight when the warm-up ended come in the run: at most one per connection.
    assert.ok(Math.abs(r.responses.announce + r.responses.scrape - r.requestsSent) <= config.network.connections, JSON.stringify(r))
    assert.match(lines[0], /^\[ {3}1 s\] warm-up announce/)
    assert.equal(r.settings.warmup, 1)
  } finally {
    await fake.close()
  }
})

test('loadtest http: over TLS; failure reasons are counted by text, and no announce answered is a warning', async () => {
  const dir = tempDir()
  const {cert, key} = makeCertificate(dir, 'load')
  // An access list that allows nothing: every announce gets "Info hash not allowed".
  const list = join(dir, 'empty.txt')
  writeFileSync(list, '')
  const t = await startHttpTracker({
    network: {enable_tls: true, tls_certificate_path: cert, tls_private_key_path: key},
    access_list: {mode: 'allow', path: list},
  })
  try {
    const config = smallRun(t.port4)
    config.network.tls = true
    const r = await runHttpLoadtest(config)
    assert.equal(r.responses.announce, 0)
    assert.ok(r.errors['Info hash not allowed'] > 10, JSON.stringify(r.errors))
    assert.ok(r.responses.scrape > 0, 'scrapes are not filtered')
    assert.equal(r.problem, undefined, 'scrapes were answered')
    assert.equal(r.warnings.length, 1)
    assert.match(
      r.warnings[0],
      /^no announce got a usable reply \([\d,]+ scrapes did\); besides those: [\d,]+ error replies: "Info hash not allowed" × [\d,]+\. .*--write-info-hashes FILE/,
    )
    assert.match(formatReport(r), /\nwarning: no announce got a usable reply/)
  } finally {
    await t.stop()
  }
})

test('loadtest http: a closed port is "no replies at all" with the connections refused', async () => {
  const r = await runHttpLoadtest(quick(9))
  assert.equal(r.responses.announce, 0)
  assert.ok(r.unanswered > 0)
  assert.equal(r.networkErrors['connection refused'], r.unanswered)
  assert.match(
    r.problem ?? '',
    /^no replies at all from 127\.0\.0\.1:9 .*: [\d,]+ requests unanswered \(connection refused × [\d,]+\)\. Is an HTTP tracker listening there\?$/,
  )
})

test('loadtest http: replies that are not bencode, or not HTTP, are malformed; failure reasons alone are "only error replies"', async () => {
  const page = await fakeTracker(200, '<html>a web server, not a tracker</html>')
  try {
    const r = await runHttpLoadtest(quick(page.port))
    assert.ok(r.malformed['a body that is not bencode'] > 10, JSON.stringify(r.malformed))
    assert.equal(r.responses.malformed, r.malformed['a body that is not bencode'])
    assert.match(r.problem ?? '', /^only malformed replies from .*a body that is not bencode × [\d,]+\. Is it an HTTP tracker\?$/)
  } finally {
    await page.close()
  }
  const noPeers = await fakeTracker(200, 'd8:intervali60ee')
  try {
    const r = await runHttpLoadtest(quick(noPeers.port))
    assert.ok(r.malformed['an announce reply without peers'] > 0 && r.malformed['a scrape reply without files'] > 0, JSON.stringify(r.malformed))
  } finally {
    await noPeers.close()
  }
  // Bytes that are no HTTP response at all.
  const garbage = net.createServer(socket => socket.on('data', () => socket.write('garbage\r\n\r\n')).on('error', () => {}))
  await new Promise<void>(resolve => garbage.listen(0, '127.0.0.1', () => resolve()))
  try {
    const r = await runHttpLoadtest(quick((garbage.address() as net.AddressInfo).port))
    assert.ok(r.malformed['a reply that is not HTTP/1.1'] > 0, JSON.stringify(r))
    assert.match(r.problem ?? '', /^only malformed replies/)
  } finally {
    await new Promise<void>(resolve => garbage.close(() => resolve()))
  }
  const refusing = await fakeTracker(200, 'd14:failure reason21:Info hash not allowede')
  try {
    const r = await runHttpLoadtest(quick(refusing.port))
    assert.ok(r.errors['Info hash not allowed'] > 10, JSON.stringify(r.errors))
    assert.match(r.problem ?? '', /^only error replies from .*"Info hash not allowed" × [\d,]+\. If the tracker has an access list/)
  } finally {
    await refusing.close()
  }
  const missing = await fakeTracker(404, 'not found')
  try {
    const r = await runHttpLoadtest(quick(missing.port))
    assert.ok(r.errors['HTTP 404'] > 10, JSON.stringify(r.errors))
    assert.match(r.problem ?? '', /^only error replies .*"HTTP 404" × [\d,]+\. Does it serve \/announce and \/scrape\?$/)
  } finally {
    await missing.close()
  }
})

test('tracker loadtest http at a closed port: the report on stdout, exit 1 and the hint on stderr, no stack', async () => {
  const bin = fileURLToPath(new URL('../../bin/run.js', import.meta.url))
  const r = await new Promise<{code: number; stdout: string; stderr: string}>(resolve =>
    execFile(
      process.execPath,
      [bin, 'loadtest', 'http', '--server', '127.0.0.1:9', '--duration', '1', '--warmup', '0'],
      {timeout: 30_000},
      (error, stdout, stderr) => resolve({code: error ? ((error as {code?: number}).code ?? 1) : 0, stdout, stderr}),
    ),
  )
  assert.equal(r.code, 1)
  assert.match(r.stdout, /^# tracker http load test\n/)
  assert.match(r.stdout, /\n {2}unanswered +[\d,]+\n {4}connection refused +[\d,]+\n/)
  assert.match(r.stderr.replace(/\s*›\s*/g, ' '), /Error: no replies at all from 127\.0\.0\.1:9 .*connection refused.*Is an HTTP tracker listening there\?/)
  assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace')
})
