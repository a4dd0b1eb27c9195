/**
 * Fuzzing: random and mutated inputs against every parser and every live server.
 * `npm run fuzz` runs at least 1M inputs per target; the test suite runs a short round.
 * Live servers run as separate `tracker serve` processes, so that a crash or an unhandled
 * rejection shows as an exit or as error output.
 */
import dgram from 'node:dgram'
import net from 'node:net'
import {randomBytes} from 'node:crypto'
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import WebSocket from 'ws'
import * as udp from '../../src/protocol/udp/index.js'
import * as http from '../../src/protocol/http/index.js'
import * as ws from '../../src/protocol/ws/index.js'
import * as frame from '../../src/protocol/ws/frame.js'
import {Rng} from '../../loadtest/model.js'
import {startProcess, stopProcess, type Started} from '../../loadtest/bench/proc.js'
import {parsePrometheus, sum} from '../../src/top/prometheus.js'

export interface FuzzResult {
  target: string
  inputs: number
  /** Inputs that threw out of a parser (or an error of the wrong kind). */
  crashes: number
  seconds: number
  /** For live servers: whether it still answered a valid request afterwards, and its error output. */
  aliveAfter?: boolean
  errorOutput?: string
  firstCrash?: string
}

/** Valid inputs, then mutated: bit flips, byte changes, truncation, extension, insertion, splicing. */
export class Mutator {
  constructor(readonly rng: Rng) {}

  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n)
    this.rng.fill(b)
    return b
  }

  mutate(seed: Buffer): Buffer {
    const r = this.rng
    const kind = r.int(8)
    if (kind === 0) return this.bytes(r.int(seed.length * 2 + 1))
    let b = Buffer.from(seed)
    const rounds = 1 + r.int(4)
    for (let k = 0; k < rounds; k++) {
      const op = r.int(6)
      const at = r.int(b.length + 1)
      if (op === 0 && b.length > 0) b[at % b.length] ^= 1 << r.int(8)
      else if (op === 1 && b.length > 0) b[at % b.length] = r.int(256)
      else if (op === 2) b = b.subarray(0, at)
      else if (op === 3) b = Buffer.concat([b, this.bytes(r.int(40))])
      else if (op === 4) b = Buffer.concat([b.subarray(0, at), this.bytes(1 + r.int(8)), b.subarray(at)])
      else b = Buffer.concat([b.subarray(0, at), b.subarray(r.int(b.length + 1))])
    }
    return b
  }
}

// ---------------------------------------------------------------------------------------------
// Seeds

function udpSeeds(rng: Rng, connectionId: Uint8Array): Buffer[] {
  const id = () => {
    const b = Buffer.alloc(20)
    rng.fill(b)
    return b
  }
  const announce = Buffer.alloc(98)
  udp.writeAnnounceRequest(announce, {
    connectionId,
    transactionId: 7,
    infoHash: id(),
    peerId: id(),
    downloaded: 0,
    left: 5,
    uploaded: 0,
    event: 2,
    ip: 0,
    key: 1,
    numWant: 50,
    port: 6881,
  })
  const scrape = Buffer.alloc(16 + 60)
  udp.writeScrapeRequest(scrape, connectionId, 9, [id(), id(), id()])
  const connect = Buffer.alloc(16)
  udp.writeConnectRequest(connect, 3)
  return [announce, scrape, connect]
}

function httpSeeds(rng: Rng): Buffer[] {
  const id = () => {
    const b = Buffer.alloc(20)
    rng.fill(b)
    return b
  }
  const head = (target: string, extra = '') => Buffer.from(`GET ${target} HTTP/1.1\r\nHost: tracker\r\n${extra}\r\n`)
  return [
    head(http.announcePath({infoHash: id(), peerId: id(), port: 6881, left: 10, event: 'started', numWant: 20})),
    head(http.announcePath({infoHash: id(), peerId: id(), port: 1, left: 0, compact: false}), 'Connection: keep-alive\r\nX-Forwarded-For: 10.0.0.1\r\n'),
    head(http.scrapePath([id(), id()])),
    head('/scrape'),
  ]
}

function wsSeeds(rng: Rng): string[] {
  const id = () => {
    const b = Buffer.alloc(20)
    rng.fill(b)
    return b.toString('latin1')
  }
  return [
    JSON.stringify({
      action: 'announce',
      info_hash: id(),
      peer_id: id(),
      left: 0,
      numwant: 5,
      offers: [{offer_id: id(), offer: {type: 'offer', sdp: 'v=0\r\no=- 1 "x" \\ é'}}],
    }),
    JSON.stringify({action: 'announce', info_hash: id(), peer_id: id(), answer: {type: 'answer', sdp: 'v=0'}, to_peer_id: id(), offer_id: id()}),
    JSON.stringify({action: 'scrape', info_hash: [id(), id()]}),
    JSON.stringify({action: 'announce', info_hash: id(), peer_id: id(), event: 'stopped'}),
  ]
}

// ---------------------------------------------------------------------------------------------
// Parsers

export function fuzzParsers(count: number, seed = 1): FuzzResult[] {
  const results: FuzzResult[] = []
  const run = (target: string, one: (m: Mutator) => void) => {
    const m = new Mutator(new Rng(seed))
    const t0 = performance.now()
    let crashes = 0
    let firstCrash: string | undefined
    for (let i = 0; i < count; i++) {
      try {
        one(m)
      } catch (error) {
        crashes++
        firstCrash ??= String((error as Error).stack ?? error)
      }
    }
    results.push({target, inputs: count, crashes, seconds: (performance.now() - t0) / 1000, firstCrash})
  }
  const udpIn = udpSeeds(new Rng(seed), Buffer.alloc(8, 1))
  const parsed = new udp.ParsedRequest()
  run('parser: udp request', m => {
    const b = m.mutate(udpIn[m.rng.int(udpIn.length)])
    udp.parseRequest(b, b.length, 70, parsed)
  })
  const httpIn = httpSeeds(new Rng(seed))
  const head = new http.RequestHead()
  const query = new http.AnnounceQuery()
  const hashes = Buffer.alloc(2000)
  const limits = {maxLineBytes: 8192, maxHeadBytes: 16384, maxHeaders: 64}
  run('parser: http head and queries', m => {
    const b = m.mutate(httpIn[m.rng.int(httpIn.length)])
    http.parseHead(b, 0, b.length, limits, Buffer.from('x-forwarded-for'), head)
    http.parseAnnounceQuery(b, 0, b.length, query)
    http.parseScrapeQuery(b, 0, b.length, 100, hashes)
  })
  const wsIn = wsSeeds(new Rng(seed)).map(s => Buffer.from(s))
  run('parser: websocket message', m => {
    const bytes = m.mutate(wsIn[m.rng.int(wsIn.length)])
    try {
      ws.parseWsMessage(bytes, 10, 255)
    } catch (error) {
      if (!(error instanceof ws.MessageError)) throw error
    }
  })
  const frameIn = frameSeeds()
  const header = new frame.FrameHeader()
  run('parser: websocket frame header', m => {
    const b = m.mutate(frameIn[m.rng.int(frameIn.length)])
    const pos = m.rng.int(b.length + 1)
    frame.parseFrameHeader(b, pos, b.length, true, header)
    frame.parseFrameHeader(b, pos, b.length, false, header)
  })
  return results
}

/** Frame headers of every length form, masked (a client's) and not (a server's). */
function frameSeeds(): Buffer[] {
  const seeds: Buffer[] = []
  for (const [first, length] of [
    [frame.FIN | frame.OP_TEXT, 5],
    [frame.OP_BINARY, 300],
    [frame.FIN | frame.OP_CONTINUATION, 70_000],
    [frame.FIN | frame.OP_PING, 125],
    [frame.FIN | frame.OP_CLOSE, 2],
  ]) {
    for (const mask of [-1, 0x12345678]) {
      const b = Buffer.alloc(frame.frameHeaderLength(length, mask >= 0) + 4, 0x61)
      frame.writeFrameHeader(b, 0, first, length, mask)
      seeds.push(b)
    }
  }
  return seeds
}

// ---------------------------------------------------------------------------------------------
// Live servers

const bin = fileURLToPath(new URL('../../../bin/run.js', import.meta.url))

/** The fuzzed server's metrics port: beside its own. */
const metricsPort = (port: number) => port + 1000

async function startServer(protocol: 'udp' | 'http' | 'ws', port: number, dir: string, ready: () => Promise<boolean>): Promise<Started> {
  const cfg = join(dir, `${protocol}.toml`)
  writeFileSync(
    cfg,
    `log_level = "error"
pid_file = "${join(dir, `${protocol}.pid`)}"
[network]
address_ipv4 = "127.0.0.1:${port}"
use_ipv6 = false
[metrics]
prometheus_endpoint_address = "127.0.0.1:${metricsPort(port)}"
`,
  )
  return startProcess(process.execPath, ['--unhandled-rejections=strict', bin, 'serve', protocol, '-c', cfg], ready)
}

/**
 * Inputs the server has taken in, from its metrics: requests it parsed plus requests it dropped
 * or connections it closed as malformed (`extra` names those drop reasons).
 */
async function processed(port: number, dropReasons: string[]): Promise<number> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort(port)}/metrics`, {signal: AbortSignal.timeout(2000)})).text()
    const s = parsePrometheus(text)
    return sum(s, 'tracker_requests_total') + dropReasons.reduce((n, reason) => n + sum(s, 'tracker_dropped_total', {reason}), 0)
  } catch {
    return 0
  }
}

/** One UDP round trip; resolves with the reply or null after `ms`. */
function udpAsk(socket: dgram.Socket, port: number, packet: Buffer, ms = 500): Promise<Buffer | null> {
  return new Promise(resolve => {
    const timer = setTimeout(() => {
      socket.off('message', onMessage)
      resolve(null)
    }, ms)
    const onMessage = (m: Buffer) => {
      clearTimeout(timer)
      socket.off('message', onMessage)
      resolve(m)
    }
    socket.on('message', onMessage)
    socket.send(packet, port, '127.0.0.1')
  })
}

async function udpConnectionId(socket: dgram.Socket, port: number): Promise<Buffer | null> {
  const c = Buffer.alloc(16)
  udp.writeConnectRequest(c, 42)
  const reply = await udpAsk(socket, port, c)
  return reply && reply.length >= 16 ? Buffer.from(reply.subarray(8, 16)) : null
}

export async function fuzzUdpServer(count: number, port: number, seed = 2): Promise<FuzzResult> {
  const dir = mkdtempSync(join(tmpdir(), 'tracker-fuzz-'))
  const socket = dgram.createSocket('udp4')
  await new Promise<void>(resolve => socket.bind(0, '127.0.0.1', () => resolve()))
  const server = await startServer('udp', port, dir, async () => (await udpConnectionId(socket, port)) !== null)
  const t0 = performance.now()
  try {
    const cid = (await udpConnectionId(socket, port))!
    const m = new Mutator(new Rng(seed))
    const seeds = udpSeeds(m.rng, cid)
    socket.on('message', () => {})
    let sent = 0
    let taken = 0
    // Bursts with a pause, so that the kernel's buffers are not the only thing tested; the
    // server's own count says when it has taken `count` inputs.
    while (taken < count && server.child.exitCode === null) {
      for (let i = 0; i < 500; i++, sent++) socket.send(m.mutate(seeds[m.rng.int(seeds.length)]), port, '127.0.0.1')
      await new Promise(resolve => setImmediate(resolve))
      if (sent % 50_000 < 500) taken = await processed(port, ['malformed', 'bad_connection_id', 'source_port_zero'])
    }
    await new Promise(resolve => setTimeout(resolve, 300))
    socket.removeAllListeners('message')
    const alive = server.child.exitCode === null && (await udpConnectionId(socket, port)) !== null
    taken = await processed(port, ['malformed', 'bad_connection_id', 'source_port_zero'])
    return {
      target: 'live: udp server',
      inputs: taken,
      crashes: alive ? 0 : 1,
      seconds: (performance.now() - t0) / 1000,
      aliveAfter: alive,
      errorOutput: server.output().trim(),
    }
  } finally {
    socket.close()
    await stopProcess(server.child)
  }
}

/** A valid announce over a fresh connection gets a bencoded answer. */
async function httpAnswers(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${http.announcePath({infoHash: Buffer.alloc(20, 1), peerId: Buffer.alloc(20, 2), port: 1, left: 0})}`, {
      signal: AbortSignal.timeout(2000),
    })
    return res.status === 200 && (await res.arrayBuffer()).byteLength > 0
  } catch {
    return false
  }
}

/**
 * Most HTTP inputs keep their framing (the request target is mutated, with no space or control
 * byte added), so that many reach the query parser on one connection; one in 50 is mutated whole
 * and usually ends the connection with a 400.
 */
function mutateHttp(m: Mutator, seed: Buffer): Buffer {
  if (m.rng.int(50) === 0) return m.mutate(seed)
  const start = seed.indexOf(32) + 1
  const end = seed.indexOf(' HTTP/1.1')
  const target = m.mutate(seed.subarray(start, end))
  // Control bytes and spaces in a target are refused with a 400 that ends the connection (RFC 9112).
  for (let i = 0; i < target.length; i++) if (target[i] <= 32 || target[i] === 127) target[i] = 37
  return Buffer.concat([seed.subarray(0, start), target, seed.subarray(end)])
}

export async function fuzzHttpServer(count: number, port: number, seed = 3): Promise<FuzzResult> {
  const dir = mkdtempSync(join(tmpdir(), 'tracker-fuzz-'))
  const server = await startServer('http', port, dir, () => httpAnswers(port))
  const t0 = performance.now()
  const m = new Mutator(new Rng(seed))
  const seeds = httpSeeds(m.rng)
  let taken = 0
  try {
    // Several connections, each writing batches of mutated requests; a connection the server
    // closes (broken framing: the rest of its batch is never read) is replaced. The server's
    // own count says when it has taken `count` requests.
    let batches = 0
    const lane = async () => {
      while (taken < count && server.child.exitCode === null) {
        const socket = net.connect({port, host: '127.0.0.1'})
        socket.on('error', () => {})
        socket.on('data', () => {})
        await new Promise<void>(resolve => {
          socket.once('connect', () => resolve())
          socket.once('close', () => resolve())
        })
        while (!socket.destroyed && socket.writable && taken < count) {
          const batch: Buffer[] = []
          for (let i = 0; i < 50; i++) batch.push(mutateHttp(m, seeds[m.rng.int(seeds.length)]))
          const flushed = socket.write(Buffer.concat(batch))
          if (!flushed) await new Promise(resolve => socket.once('drain', resolve).once('close', resolve))
          await new Promise(resolve => setImmediate(resolve))
          if (++batches % 100 === 0) taken = await processed(port, ['bad_request'])
        }
        socket.destroy()
      }
    }
    await Promise.all(Array.from({length: 8}, lane))
    const alive = server.child.exitCode === null && (await httpAnswers(port))
    taken = await processed(port, ['bad_request'])
    return {
      target: 'live: http server',
      inputs: taken,
      crashes: alive ? 0 : 1,
      seconds: (performance.now() - t0) / 1000,
      aliveAfter: alive,
      errorOutput: server.output().trim(),
    }
  } finally {
    await stopProcess(server.child)
  }
}

async function wsAnswers(port: number): Promise<boolean> {
  return new Promise(resolve => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}`)
    const timer = setTimeout(() => {
      socket.terminate()
      resolve(false)
    }, 2000)
    socket.on('error', () => {
      clearTimeout(timer)
      resolve(false)
    })
    socket.on('open', () => socket.send(JSON.stringify({action: 'scrape', info_hash: 'a'.repeat(20)})))
    socket.on('message', () => {
      clearTimeout(timer)
      socket.terminate()
      resolve(true)
    })
  })
}

export async function fuzzWsServer(count: number, port: number, seed = 4): Promise<FuzzResult> {
  const dir = mkdtempSync(join(tmpdir(), 'tracker-fuzz-'))
  const server = await startServer('ws', port, dir, () => wsAnswers(port))
  const t0 = performance.now()
  const m = new Mutator(new Rng(seed))
  const seeds = wsSeeds(m.rng).map(s => Buffer.from(s))
  let sent = 0
  try {
    const lane = async () => {
      while (sent < count && server.child.exitCode === null) {
        const socket = new WebSocket(`ws://127.0.0.1:${port}`, {perMessageDeflate: false})
        socket.on('error', () => {})
        socket.on('message', () => {})
        const open = await new Promise<boolean>(resolve => {
          socket.once('open', () => resolve(true))
          socket.once('close', () => resolve(false))
        })
        while (open && socket.readyState === WebSocket.OPEN && sent < count) {
          for (let i = 0; i < 200 && sent < count; i++, sent++) {
            let b = m.mutate(seeds[m.rng.int(seeds.length)])
            // Most inputs are kept valid UTF-8 so that they reach the JSON scanner; the rest test
            // the WebSocket layer's 1007 close. Text and binary frames both reach the parser.
            if (m.rng.int(8) !== 0) b = Buffer.from(b.toString())
            socket.send(b, {binary: m.rng.int(4) === 0})
          }
          await new Promise(resolve => setImmediate(resolve))
          while (socket.bufferedAmount > 1 << 20) await new Promise(resolve => setTimeout(resolve, 5))
        }
        socket.terminate()
      }
    }
    // Raw frames with mutated headers, masks and lengths, straight at the WebSocket layer.
    const frameLane = async () => {
      while (sent < count && server.child.exitCode === null) {
        const socket = net.connect({port, host: '127.0.0.1'})
        socket.on('error', () => {})
        const closed = new Promise<void>(resolve => socket.once('close', () => resolve()))
        socket.write(
          `GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        )
        for (let i = 0; i < 200 && sent < count && !socket.destroyed; i++, sent++) {
          const payload = seeds[m.rng.int(seeds.length)]
          const mask = randomBytes(4)
          const head =
            payload.length < 126 ? Buffer.from([0x81, 0x80 | payload.length]) : Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 0xff])
          socket.write(m.mutate(Buffer.concat([head, mask, Buffer.from(payload.map((x, j) => x ^ mask[j & 3]))])))
        }
        socket.end()
        await Promise.race([closed, new Promise(resolve => setTimeout(resolve, 200))])
        socket.destroy()
      }
    }
    await Promise.all([...Array.from({length: 6}, lane), frameLane(), frameLane()])
    await new Promise(resolve => setTimeout(resolve, 300))
    const alive = server.child.exitCode === null && (await wsAnswers(port))
    return {
      target: 'live: websocket server',
      inputs: sent,
      crashes: alive ? 0 : 1,
      seconds: (performance.now() - t0) / 1000,
      aliveAfter: alive,
      errorOutput: server.output().trim(),
    }
  } finally {
    await stopProcess(server.child)
  }
}

export function formatFuzz(results: FuzzResult[]): string {
  const rows = results.map(
    r =>
      `| ${r.target.padEnd(29)} | ${r.inputs.toLocaleString('en-US').padStart(10)} | ${String(r.crashes).padStart(7)} | ${r.seconds.toFixed(1).padStart(7)} | ${r.aliveAfter === undefined ? '-' : r.aliveAfter ? 'yes' : 'NO'} |`,
  )
  return ['| target                        |     inputs | crashes | seconds | alive after |', '| --- | ---: | ---: | ---: | --- |', ...rows].join('\n') + '\n'
}
