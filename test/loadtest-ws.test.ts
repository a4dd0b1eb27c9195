import {test} from 'node:test'
import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import type {AddressInfo} from 'node:net'
import {fileURLToPath} from 'node:url'
import Server from 'bittorrent-tracker/server'
import {WebSocketServer} from 'ws'
import {defaultsOf, loadtestWsSchema, type LoadtestWsConfig} from '../src/config/index.js'
import {runWsLoadtest} from '../loadtest/ws.js'
import {formatReport} from '../loadtest/report.js'
import {startWsTracker, tempDir} from './harness.js'
import {makeCertificate} from './certs.js'
import {member, numberMember} from '../loadtest/ws-worker.js'
import {LoadtestUsageError} from '../loadtest/threads.js'

function smallRun(address: string): LoadtestWsConfig {
  const config = defaultsOf(loadtestWsSchema) as LoadtestWsConfig
  config.server_address = address
  config.warmup = 0
  config.duration = 2
  config.network.connections = 16
  config.requests.number_of_torrents = 20
  return config
}

test('loadtest ws against ours (IPv4 and IPv6): offers relayed and answered, summary and progress', async () => {
  const t = await startWsTracker()
  try {
    for (const address of [`127.0.0.1:${t.port4}`, `[::1]:${t.port6}`]) {
      const lines: string[] = []
      const r = await runWsLoadtest(smallRun(address), {onProgress: l => lines.push(l)})
      assert.ok(r.responses.announce > 50, JSON.stringify(r))
      assert.ok(r.responses.offer > 10, 'offers were relayed')
      assert.ok(r.responses.answer > 10, 'answers came back')
      assert.ok(r.responses.scrape > 0)
      assert.equal(r.responses.error, 0, JSON.stringify(r.errors))
      assert.equal(r.responses.malformed, 0, JSON.stringify(r.malformed))
      assert.equal(r.unanswered, 0)
      assert.equal(r.problem, undefined)
      assert.ok(lines.length >= 1 && /offer [\d,]+\/s/.test(lines[0]), lines.join('\n'))
      assert.match(formatReport(r), /responses\/s \(total\)/)
    }
  } finally {
    await t.stop()
  }
})

test('loadtest ws over wss:// (certificates not verified), and a refused handshake is a clear error', async () => {
  const {cert, key} = makeCertificate(tempDir(), 'ws')
  const t = await startWsTracker({network: {enable_tls: true, tls_certificate_path: cert, tls_private_key_path: key}})
  try {
    const config = smallRun(`127.0.0.1:${t.port4}`)
    config.network.tls = true
    const r = await runWsLoadtest(config)
    assert.ok(r.responses.announce > 50 && r.responses.answer > 10, JSON.stringify(r.responses))
    assert.equal(r.responses.error, 0, JSON.stringify(r.errors))
    // Plain WebSocket to a TLS port: the handshake fails and says so.
    await assert.rejects(runWsLoadtest(smallRun(`127.0.0.1:${t.port4}`)), /could not connect to ws:\/\/127\.0\.0\.1:\d+: /)
  } finally {
    await t.stop()
  }
})

test('loadtest ws against the bittorrent-tracker npm server', async () => {
  const server = new Server({udp: false, http: false, ws: true, stats: false})
  server.on('warning', () => {})
  server.on('error', () => {})
  const port = 28_000 + (process.pid % 3000)
  await new Promise<void>(resolve => server.listen(port, '127.0.0.1', () => resolve()))
  try {
    const r = await runWsLoadtest(smallRun(`127.0.0.1:${port}`))
    assert.ok(r.responses.announce > 20, JSON.stringify(r))
    assert.ok(r.responses.offer > 0 && r.responses.answer > 0, JSON.stringify(r.responses))
  } finally {
    await new Promise<void>(resolve => server.close(() => resolve()))
  }
})

test('loadtest ws: the warm-up is sent but left out', async () => {
  const t = await startWsTracker()
  try {
    const config = smallRun(`127.0.0.1:${t.port4}`)
    config.warmup = 1
    config.duration = 1
    const lines: string[] = []
    const r = await runWsLoadtest(config, {onProgress: l => lines.push(l)})
    assert.equal(r.problem, undefined, r.problem)
    assert.ok(r.warmup.seconds >= 0.9 && r.warmup.requestsSent > 0 && r.warmup.replies > r.warmup.requestsSent / 2, JSON.stringify(r.warmup))
    assert.ok(r.durationSeconds >= 0.9 && r.durationSeconds < 1.5 && r.requestsSent > 0)
    assert.match(lines[0], /^\[ {3}1 s\] warm-up announce/)
    assert.equal(r.settings.warmup, 1)
  } finally {
    await t.stop()
  }
})

test('loadtest ws: an unreachable tracker is a clear error with a hint, not a hang', async () => {
  await assert.rejects(runWsLoadtest(smallRun('127.0.0.1:9')), (error: Error) => {
    assert.ok(error instanceof LoadtestUsageError, String(error))
    assert.match(error.message, /^could not connect to ws:\/\/127\.0\.0\.1:9: .*ECONNREFUSED.*\. Is a WebTorrent tracker listening there\?$/)
    return true
  })
})

test('tracker loadtest ws at a closed port exits 1 with the hint, no stack', async () => {
  const bin = fileURLToPath(new URL('../../bin/run.js', import.meta.url))
  const r = await new Promise<{code: number; stderr: string}>(resolve =>
    execFile(process.execPath, [bin, 'loadtest', 'ws', '--server', '127.0.0.1:9', '--duration', '1', '--json'], {timeout: 30_000}, (error, _stdout, stderr) =>
      resolve({code: error ? ((error as {code?: number}).code ?? 1) : 0, stderr}),
    ),
  )
  assert.equal(r.code, 1)
  assert.match(r.stderr.replace(/\s*›\s*/g, ' '), /Error: could not connect to ws:\/\/127\.0\.0\.1:9: .*Is a WebTorrent tracker listening there\?/)
  assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace')
})

/** A fake WebTorrent tracker on 127.0.0.1 that answers every message with `reply` (or nothing). */
async function fakeTracker(reply: string | undefined): Promise<{address: string; close(): Promise<void>}> {
  const server = new WebSocketServer({host: '127.0.0.1', port: 0})
  server.on('connection', ws => ws.on('message', () => reply !== undefined && ws.send(reply)))
  await new Promise<void>(resolve => server.once('listening', () => resolve()))
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>(resolve => {
        for (const c of server.clients) c.terminate()
        server.close(() => resolve())
      }),
  }
}

test('loadtest ws: messages it cannot read are malformed, failure reasons are errors, silence is "no replies at all"', async () => {
  const cases: [string | undefined, (r: Awaited<ReturnType<typeof runWsLoadtest>>) => void][] = [
    [
      'not JSON at all',
      r => {
        assert.ok(r.malformed['a message that is not JSON'] > 0, JSON.stringify(r.malformed))
        assert.match(r.problem ?? '', /^only malformed replies from .*a message that is not JSON × [\d,]+.*Is it a WebTorrent tracker\?$/)
      },
    ],
    [
      '{"hello":"world"}',
      r => assert.ok(r.malformed['a message that is neither an announce nor a scrape reply, an offer or an answer'] > 0, JSON.stringify(r.malformed)),
    ],
    [
      '{"failure reason":"Info hash not allowed","action":"announce"}',
      r => {
        assert.ok(r.errors['Info hash not allowed'] > 10, JSON.stringify(r.errors))
        assert.match(r.problem ?? '', /^only error replies from .*"Info hash not allowed" × [\d,]+\. If the tracker has an access list/)
      },
    ],
    [
      undefined,
      r => {
        assert.equal(r.unanswered, 16, 'every connection waits for its announce')
        assert.match(r.problem ?? '', /^no replies at all from .*: 16 requests unanswered\. Is a WebTorrent tracker listening there\?$/)
      },
    ],
  ]
  for (const [reply, check] of cases) {
    const fake = await fakeTracker(reply)
    try {
      const config = smallRun(fake.address)
      config.duration = 1
      check(await runWsLoadtest(config))
    } finally {
      await fake.close()
    }
  }
})

test('loadtest ws reads members of relayed messages without parsing them: escapes kept, keys in SDP text ignored', () => {
  const key = (name: string) => Buffer.from(`"${name}":`)
  const ids = ['"\\\u0000\n\u00ff"x"\\', '\\', 'plain-twenty-chars!!', String.fromCharCode(...Array.from({length: 20}, (_, i) => i * 13))]
  for (const id of ids) {
    const text = JSON.stringify({
      action: 'announce',
      offer: {type: 'offer', sdp: 'v=0 "offer_id":"fake" "complete":7 \\"peer_id\\":'},
      offer_id: id,
      peer_id: id.split('').reverse().join(''),
      complete: 12,
      info_hash: id,
    })
    const data = Buffer.from(text)
    assert.equal(JSON.parse(member(data, key('offer_id'))!.toString()), id)
    assert.equal(JSON.parse(member(data, key('peer_id'))!.toString()), id.split('').reverse().join(''))
    assert.equal(JSON.parse(member(data, key('info_hash'))!.toString()), id)
    assert.equal(numberMember(data, key('complete')), 12)
  }
  assert.equal(member(Buffer.from('{"offer_id":12}'), key('offer_id')), null)
  assert.equal(member(Buffer.from('{"offer_id":"unterminated}'), key('offer_id')), null)
  assert.equal(numberMember(Buffer.from('{"a":1}'), key('complete')), 0)
})
