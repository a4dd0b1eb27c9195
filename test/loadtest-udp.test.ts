import {test} from 'node:test'
import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import dgram from 'node:dgram'
import {fileURLToPath} from 'node:url'
import {defaultsOf, loadtestUdpSchema, type LoadtestUdpConfig} from '../src/config/index.js'
import * as udp from '../src/protocol/udp/index.js'
import {version} from '../src/version.js'
import {runUdpLoadtest} from '../loadtest/udp.js'
import {formatNumber, formatReport, type LoadReport} from '../loadtest/report.js'
import {malformedReply} from '../loadtest/udp-worker.js'
import {startUdpTracker} from './harness.js'

const bin = fileURLToPath(new URL('../../bin/run.js', import.meta.url))

function smallRun(port: number): LoadtestUdpConfig {
  const config = defaultsOf(loadtestUdpSchema) as LoadtestUdpConfig
  config.server_address = `127.0.0.1:${port}`
  config.warmup = 0
  config.duration = 1
  config.network.requests_in_flight_per_socket = 8
  config.requests.number_of_torrents = 50
  config.requests.number_of_peers = 500
  return config
}

/** A fake tracker on 127.0.0.1: `answer` gets each request and the client's address, and sends what it likes. */
async function fakeTracker(
  answer: (request: Buffer, reply: (bytes: Buffer) => void) => void,
): Promise<{port: number; received: () => number; close(): Promise<void>}> {
  const socket = dgram.createSocket('udp4')
  let received = 0
  socket.on('message', (m, from) => {
    received++
    answer(m, bytes => socket.send(bytes, from.port, from.address))
  })
  await new Promise<void>(resolve => socket.bind(0, '127.0.0.1', () => resolve()))
  return {port: socket.address().port, received: () => received, close: () => new Promise<void>(resolve => socket.close(() => resolve()))}
}

const actionOf = (m: Buffer): number => m.readUInt32BE(8)
const tidOf = (m: Buffer): number => m.readUInt32BE(12)

/** The connect reply a fake gives, with connection id 1. */
function connectReply(m: Buffer): Buffer {
  const out = Buffer.alloc(16)
  out.writeUInt32BE(udp.ACTION_CONNECT, 0)
  out.writeUInt32BE(tidOf(m), 4)
  out.writeBigUInt64BE(1n, 8)
  return out
}

function errorReply(m: Buffer, text: string): Buffer {
  const out = Buffer.alloc(8 + Buffer.byteLength(text))
  out.writeUInt32BE(udp.ACTION_ERROR, 0)
  out.writeUInt32BE(tidOf(m), 4)
  out.write(text, 8)
  return out
}

test('loadtest udp: every request answered, peers returned; the warm-up is left out; summary, JSON fields and progress lines', async () => {
  const t = await startUdpTracker()
  try {
    const config = smallRun(t.port4)
    config.warmup = 1
    config.duration = 2
    const lines: string[] = []
    const r = await runUdpLoadtest(config, {onProgress: l => lines.push(l)})
    // The connects came in the warm-up (ids stay valid for 50 s): they are not in the figures.
    assert.equal(r.responses.connect, 0)
    assert.ok(r.responses.announce > 100, JSON.stringify(r))
    assert.ok(r.responses.scrape > 0)
    assert.equal(r.responses.error, 0)
    assert.equal(r.responses.malformed, 0, JSON.stringify(r.malformed))
    assert.equal(r.unanswered, 0)
    assert.equal(r.problem, undefined)
    assert.deepEqual(r.warnings, [])
    assert.ok(r.extra['peers per announce'] > 1, 'a populated swarm returns peers')
    assert.ok(r.latencyMs.p99 >= r.latencyMs.p50 && r.latencyMs.p50 > 0)
    // The generator's own CPU, measured over the same time (a closed loop keeps it busy).
    assert.equal(r.generatorCpu.threads, config.workers)
    assert.ok(r.generatorCpu.cores > 0.05 && r.generatorCpu.cores <= config.workers + 1, JSON.stringify(r.generatorCpu))
    assert.ok(r.generatorCpu.usPerResponse > 0, JSON.stringify(r.generatorCpu))
    assert.ok(r.warmup.seconds >= 0.9 && r.warmup.seconds < 1.5, JSON.stringify(r.warmup))
    assert.ok(r.warmup.requestsSent > 0 && r.warmup.replies > 0)
    assert.ok(r.durationSeconds >= 1.9 && r.durationSeconds < 2.5)
    assert.equal(r.generator.version, version)
    assert.ok(Math.abs(Date.parse(r.startedAt) - Date.now()) < 60_000, r.startedAt)
    assert.equal(r.settings.server_address, config.server_address)
    assert.deepEqual(JSON.parse(JSON.stringify(r.settings)), config)
    assert.match(lines[0], /^\[ {3}1 s\] warm-up connect [\d,]+\/s {2}announce [\d,]+\/s/, lines.join('\n'))
    assert.ok(
      lines.slice(1).some(l => /^\[ {3}[23] s\] connect/.test(l)),
      lines.join('\n'),
    )
    const text = formatReport(r)
    assert.match(text, /responses\/s \(total\)/)
    assert.match(text, /warm-up \(s\) +1(\.\d)?: [\d,]+ requests sent, not counted below/)
    assert.match(text, /malformed +0\n/)
  } finally {
    await t.stop()
  }
})

test('loadtest udp: every request the fake tracker saw is counted, in the warm-up or in the run', async () => {
  const fake = await fakeTracker((m, reply) => {
    if (actionOf(m) === udp.ACTION_CONNECT) return reply(connectReply(m))
    const out = Buffer.alloc(actionOf(m) === udp.ACTION_ANNOUNCE ? 20 : 8 + (12 * (m.length - 16)) / 20)
    out.writeUInt32BE(actionOf(m), 0)
    out.writeUInt32BE(tidOf(m), 4)
    reply(out)
  })
  try {
    const config = smallRun(fake.port)
    config.warmup = 1
    const r = await runUdpLoadtest(config)
    assert.equal(r.warmup.requestsSent + r.requestsSent, fake.received(), JSON.stringify(r))
    assert.ok(r.warmup.requestsSent > 0 && r.requestsSent > 0)
    // Replies to the requests in flight when the warm-up ended come in the run: at most one window.
    const replies = r.responses.announce + r.responses.scrape + r.responses.connect
    const window = config.network.sockets_per_worker * config.network.requests_in_flight_per_socket
    assert.ok(Math.abs(replies - r.requestsSent) <= window, JSON.stringify(r))
    assert.equal(r.unanswered, 0)
    assert.equal(r.problem, undefined)
  } finally {
    await fake.close()
  }
})

test('loadtest udp: a closed port is "no replies at all" with the ICMP count', async () => {
  const r = await runUdpLoadtest(smallRun(9)) // discard: nothing answers
  assert.equal(r.responses.announce, 0)
  assert.ok(r.unanswered > 0)
  assert.ok(r.networkErrors['port unreachable (ICMP)'] > 0, JSON.stringify(r.networkErrors))
  assert.match(
    r.problem ?? '',
    /^no replies at all from 127\.0\.0\.1:9 in 1(\.\d)? s \(\d+ requests sent\): \d+ requests unanswered \(port unreachable \(ICMP\) × \d+\)\. Is a UDP \(BEP 15\) tracker listening there\?$/,
  )
})

test("loadtest udp: malformed replies are counted by reason (opentracker's 8-byte announce replies), and say so", async () => {
  let short = 0
  const fake = await fakeTracker((m, reply) => {
    if (actionOf(m) === udp.ACTION_CONNECT) return reply(connectReply(m))
    // What opentracker sends for a torrent off its whitelist: the header alone; now and then a runt.
    if (++short % 100 === 0) reply(Buffer.from([1, 2, 3]))
    reply(m.subarray(8, 16))
  })
  try {
    const r = await runUdpLoadtest(smallRun(fake.port))
    assert.equal(r.responses.announce + r.responses.scrape, 0)
    assert.ok(r.responses.connect > 0)
    assert.ok(r.malformed['an announce reply of 8 bytes (20 at least)'] > 100, JSON.stringify(r.malformed))
    assert.ok(r.malformed['a scrape reply whose length does not match the info hashes asked'] > 0, JSON.stringify(r.malformed))
    assert.ok(r.malformed['a datagram shorter than 8 bytes'] > 0, JSON.stringify(r.malformed))
    assert.equal(
      r.responses.malformed,
      Object.values(r.malformed).reduce((a, b) => a + b, 0),
    )
    assert.ok(r.totalResponsesPerSecond > r.responsesPerSecond.connect, 'malformed replies are replies')
    assert.match(r.problem ?? '', /^only malformed replies from 127\.0\.0\.1:\d+ .*an announce reply of 8 bytes \(20 at least\) × [\d,]+.*did its -w file load/)
    assert.match(formatReport(r), /\n {2}malformed +[\d,]+\n {4}an announce reply of 8 bytes \(20 at least\) +[\d,]+\n/)
  } finally {
    await fake.close()
  }
})

test('loadtest udp: error replies keep the connection id (one connect per socket); a refused id is renewed', async () => {
  const fake = await fakeTracker((m, reply) => reply(actionOf(m) === udp.ACTION_CONNECT ? connectReply(m) : errorReply(m, 'Info hash not allowed')))
  try {
    const config = smallRun(fake.port)
    config.warmup = 0
    const r = await runUdpLoadtest(config)
    assert.equal(r.responses.connect, config.network.sockets_per_worker, JSON.stringify(r.responses))
    assert.ok(r.errors['Info hash not allowed'] > 1000, JSON.stringify(r.errors))
    assert.match(
      r.problem ?? '',
      /^only error replies from .*: [\d,]+ connect replies; [\d,]+ error replies: "Info hash not allowed" × [\d,]+\. If the tracker has an access list, allow the simulated torrents: `tracker loadtest udp --write-info-hashes FILE` writes them\.$/,
    )
  } finally {
    await fake.close()
  }
  // bittorrent-tracker's text for a connection id it does not know: the generator asks for a new one.
  const refusing = await fakeTracker((m, reply) =>
    reply(actionOf(m) === udp.ACTION_CONNECT ? connectReply(m) : errorReply(m, 'received packet with invalid connection id')),
  )
  try {
    const r = await runUdpLoadtest(smallRun(refusing.port))
    assert.ok(r.responses.connect > 100, JSON.stringify(r.responses))
  } finally {
    await refusing.close()
  }
})

test('loadtest udp: which replies are malformed', () => {
  const reply = (length: number) => Buffer.alloc(length)
  const [CONNECT, ANNOUNCE, SCRAPE] = [1, 2, 3] // the generator's request kinds
  assert.equal(malformedReply(reply(16), udp.ACTION_CONNECT, CONNECT, 6, 0), null)
  assert.equal(malformedReply(reply(15), udp.ACTION_CONNECT, CONNECT, 6, 0), 'a connect reply of 15 bytes (16 expected)')
  assert.equal(malformedReply(reply(20 + 6 * 3), udp.ACTION_ANNOUNCE, ANNOUNCE, 6, 0), null)
  assert.equal(malformedReply(reply(20 + 18 * 2), udp.ACTION_ANNOUNCE, ANNOUNCE, 18, 0), null)
  assert.equal(malformedReply(reply(8), udp.ACTION_ANNOUNCE, ANNOUNCE, 6, 0), 'an announce reply of 8 bytes (20 at least)')
  assert.match(malformedReply(reply(20 + 7), udp.ACTION_ANNOUNCE, ANNOUNCE, 6, 0)!, /not a whole number of 6-byte peers/)
  assert.equal(malformedReply(reply(8 + 12 * 3), udp.ACTION_SCRAPE, SCRAPE, 6, 3), null)
  assert.equal(malformedReply(reply(8 + 12 * 2), udp.ACTION_SCRAPE, SCRAPE, 6, 3), null, 'a hash asked twice may be answered once')
  for (const length of [8, 8 + 12 * 4, 8 + 12 * 2 + 5])
    assert.match(malformedReply(reply(length), udp.ACTION_SCRAPE, SCRAPE, 6, 3)!, /does not match the info hashes asked/)
  assert.equal(malformedReply(reply(20), udp.ACTION_ANNOUNCE, SCRAPE, 6, 1), 'an announce reply to a scrape request')
  assert.equal(malformedReply(reply(16), udp.ACTION_CONNECT, ANNOUNCE, 6, 0), 'a connect reply to an announce request')
  assert.equal(malformedReply(reply(20), 7, ANNOUNCE, 6, 0), 'a reply with unknown action 7')
})

test('one number format: thousands separators, fractions to 3 significant digits', () => {
  assert.deepEqual([12_845, 12_845.6, 123.45, 27.06, 5.734, 0.1234, 0, 3].map(formatNumber), ['12,845', '12,846', '123', '27.1', '5.73', '0.123', '0', '3'])
})

function cli(args: string[]): Promise<{code: number; stdout: string; stderr: string}> {
  return new Promise(resolve =>
    execFile(process.execPath, [bin, ...args], {timeout: 30_000}, (error, stdout, stderr) =>
      resolve({code: error ? ((error as {code?: number}).code ?? 1) : 0, stdout, stderr}),
    ),
  )
}

test('tracker loadtest udp --json: stdout is only the JSON, progress goes to stderr; a closed port exits 1 with the hint', async () => {
  const t = await startUdpTracker()
  try {
    const ok = await cli(['loadtest', 'udp', '--server', `127.0.0.1:${t.port4}`, '--duration', '1', '--warmup', '1', '--json'])
    assert.equal(ok.code, 0, ok.stderr)
    const report = JSON.parse(ok.stdout) as LoadReport
    assert.equal(report.settings.warmup, 1)
    assert.equal(report.settings.duration, 1)
    assert.equal(report.generator.version, version)
    assert.ok(report.responses.announce > 0 && report.warmup.requestsSent > 0)
    assert.match(ok.stderr, /measuring 1 s after a 1 s warm-up \(sent, not counted\)/)
    assert.match(ok.stderr, /^\[ {3}1 s\] warm-up /m)
  } finally {
    await t.stop()
  }
  const closed = await cli(['loadtest', 'udp', '--server', '127.0.0.1:9', '--duration', '1', '--warmup', '0', '--json'])
  assert.equal(closed.code, 1)
  const report = JSON.parse(closed.stdout) as LoadReport
  assert.match(report.problem!, /^no replies at all/)
  assert.match(closed.stderr.replace(/\s*›\s*/g, ' '), /Error: no replies at all from 127\.0\.0\.1:9 .*Is a UDP \(BEP 15\) tracker listening there\?/)
  assert.doesNotMatch(closed.stderr, /at .*\.js:\d+/, 'no stack trace')
})
