/**
 * HTTP and WebSocket attacks that already held, kept so that they keep holding: slowloris,
 * WebSocket frame bombs, WebSocket max_connections, and floods of unique info hashes against
 * max_torrents on all three servers.
 */
import {randomBytes} from 'node:crypto'
import WebSocket from 'ws'
import {maskedFrame} from '../../loadtest/ws-socket.js'
import {announcePath} from '../../src/protocol/http/client.js'
import {MESSAGE} from '../../src/protocol/messages.js'
import {OP_CONTINUATION, OP_TEXT} from '../../src/protocol/ws/frame.js'
import {decode} from '../http-client.js'
import {UdpClient} from '../harness.js'
import {binaryId, isFailure, WsTestClient} from '../ws-client.js'
import {holdConnections, openHttp, rawWebSocket, secs, sleep, waitFor, within} from './net.js'
import {httpAnnouncer, Probe, wsAnnouncer} from './probe.js'
import type {Attack, Context} from './suite.js'

const TIMEOUT_S = 10

function slowloris(server: 'http' | 'ws'): Attack {
  return {
    name: 'held.slowloris',
    server,
    workers: 'any',
    budgetS: 40,
    async run(ctx) {
      const http = server === 'http'
      const t = await ctx.tracker({protocol: server, config: {connections: http ? {request_timeout: TIMEOUT_S} : {send_timeout: TIMEOUT_S}}})
      const probe = new Probe(http ? httpAnnouncer(t.port) : wsAnnouncer(t.port), 500)
      const head = Buffer.from(
        http
          ? `GET ${announcePath({infoHash: randomBytes(20), peerId: randomBytes(20), port: 1, left: 1})} HTTP/1.1\r\n`
          : 'GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n',
      )
      const conns = await holdConnections(ctx, t.port, 50)
      const t0 = Date.now()
      // Byte 0 goes now, the rest one a second.
      let at = 1
      const drip = setInterval(() => {
        for (const h of conns) if (!h.closedAt && !h.socket.destroyed) h.socket.write(head.subarray(at, at + 1))
        at = (at + 1) % head.length
      }, 1000)
      ctx.defer(() => clearInterval(drip))
      for (const h of conns) h.socket.write(head.subarray(0, 1))
      probe.start('during')
      const bound = (TIMEOUT_S + 3) * 1000
      await waitFor(() => conns.every(h => h.closedAt !== 0), bound, 250)
      clearInterval(drip)
      await probe.stop()
      const closed = conns.filter(h => h.closedAt !== 0)
      const last = Math.max(...closed.map(h => h.closedAt - t0), 0)
      return {
        held: closed.length === conns.length && last <= bound && probe.ratio('during') >= 0.9,
        evidence:
          `${conns.length} heads at a byte a second: ${closed.length} cut off${closed.length ? `, the last after ${secs(last)} s` : ` within ${secs(Date.now() - t0)} s`} (bound ${TIMEOUT_S + 3} s); ` +
          `legit ${server} ${probe.text('during')}; drops: ${await t.byReason('tracker_dropped_total')}`,
      }
    },
  }
}

/** Whether the tracker closes the connection within 2 s of `frames`; the close code it sent, if any. */
async function bomb(ctx: Context, port: number, frames: Buffer[]): Promise<string> {
  const s = await rawWebSocket(ctx, port)
  let code = 0
  let closed = false
  s.on('data', (d: Buffer) => {
    for (let i = 0; i + 3 < d.length; i++) if (d[i] === 0x88 && d[i + 1] >= 2) code ||= d.readUInt16BE(i + 2)
  })
  s.on('close', () => (closed = true))
  for (const f of frames) if (!s.destroyed) s.write(f)
  const t0 = Date.now()
  await waitFor(() => closed, 2000, 20)
  const ms = Date.now() - t0
  s.destroy()
  return closed ? `closed${code ? ` (${code})` : ''} in ${ms} ms` : 'still open after 2 s'
}

function frameBombs(io: 'batched' | 'node'): Attack {
  return {
    name: 'held.ws-frame-bombs',
    server: io === 'batched' ? 'ws' : 'ws node-io',
    workers: 'any',
    fast: true,
    budgetS: 30,
    async run(ctx) {
      const t = await ctx.tracker({protocol: 'ws', config: {network: {batched_io: io === 'batched'}}})
      const huge = Buffer.from([0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 0x61, 0x62])
      const piece = Buffer.alloc(64 * 1024, 0x61)
      const fragment = (opcode: number, fin: boolean) => {
        const f = maskedFrame(piece, opcode)
        if (!fin) f[0] &= 0x7f
        return f
      }
      const unmasked = Buffer.concat([Buffer.from([0x81, 5]), Buffer.from('hello')])
      const bombs: [string, Buffer[]][] = [
        ['2^63-byte header', [huge]],
        ['fragments past 4x max_message_size', [fragment(OP_TEXT, false), ...Array.from({length: 5}, () => fragment(OP_CONTINUATION, false))]],
        ['unmasked frame', [unmasked]],
        ['invalid UTF-8', [maskedFrame(Buffer.from([0x7b, 0xc3, 0x28, 0xff, 0x7d]), OP_TEXT)]],
      ]
      const results: string[] = []
      let closed = 0
      for (const [what, frames] of bombs) {
        const r = await bomb(ctx, t.port, frames)
        if (r.startsWith('closed')) closed++
        results.push(`${what}: ${r}`)
      }
      const rss = Math.round(t.rss() / 2 ** 20)
      return {held: closed === bombs.length && t.alive, evidence: `${closed}/${bombs.length} closed; ${results.join('; ')}; RSS ${rss} MiB after`}
    },
  }
}

const wsMaxConnections: Attack = {
  // max_connections is per worker, and which worker takes a connection is the kernel's choice.
  name: 'held.ws-max-connections',
  server: 'ws',
  workers: 'one',
  fast: true,
  budgetS: 30,
  async run(ctx) {
    const MAX = 50
    const t = await ctx.tracker({protocol: 'ws', config: {connections: {max_connections: MAX}}})
    const url = `ws://127.0.0.1:${t.port}`
    const open = () => within(WsTestClient.open(url), 3000, 'WebSocket', late => late.close()).then(c => ctx.own(c))
    const first = await Promise.all(Array.from({length: MAX}, open))
    const refusal = await new Promise<string>(resolve => {
      const ws = new WebSocket(url, {handshakeTimeout: 3000})
      ctx.defer(() => ws.terminate())
      ws.on('open', () => resolve('opened'))
      ws.on('unexpected-response', (_req, res) => resolve(`HTTP ${res.statusCode}`))
      ws.on('error', error => resolve(error.message))
    })
    for (const c of first.slice(0, 10)) c.close()
    await sleep(500)
    const again = await Promise.allSettled(Array.from({length: 10}, open))
    const reopened = again.filter(r => r.status === 'fulfilled').length
    return {
      held: refusal === 'HTTP 503' && reopened === 10,
      evidence: `max_connections ${MAX}: ${first.length} open, the next one got ${refusal}; after 10 closed, ${reopened}/10 new ones opened; drops: ${await t.byReason('tracker_dropped_total')}`,
    }
  },
}

const MAX_TORRENTS = 100
const FLOOD = 300

/** Announces `FLOOD` unique info hashes one after another; resolves with how many were refused for the torrent limit. */
const floods: Record<'udp' | 'http' | 'ws', (ctx: Context, port: number) => Promise<number>> = {
  async udp(ctx, port) {
    const c = ctx.own(await UdpClient.open(4, port))
    await c.connect()
    let refused = 0
    for (let i = 0; i < FLOOD; i++) {
      const r = await c.request(c.announceBytes({infoHash: randomBytes(20), peerId: randomBytes(20), port: 2000}))
      if (r.action === 3 && r.message === MESSAGE.torrentLimit) refused++
    }
    return refused
  },
  async http(ctx, port) {
    const c = await openHttp(ctx, port)
    let refused = 0
    for (let i = 0; i < FLOOD; i++) {
      c.get(announcePath({infoHash: randomBytes(20), peerId: randomBytes(20), port: 2000, left: 1}))
      const reason = decode((await c.next()).body)['failure reason']
      if (reason && Buffer.from(reason).toString() === MESSAGE.torrentLimit) refused++
    }
    return refused
  },
  async ws(ctx, port) {
    const c = await within(WsTestClient.open(`ws://127.0.0.1:${port}`), 3000, 'WebSocket', late => late.close()).then(x => ctx.own(x))
    const peerId = binaryId()
    let refused = 0
    for (let i = 0; i < FLOOD; i++) {
      c.send({action: 'announce', info_hash: binaryId(), peer_id: peerId, left: 1, numwant: 0, uploaded: 0, downloaded: 0})
      const m = await c.next(x => x.action === 'announce')
      if (isFailure(m) && m['failure reason'] === MESSAGE.torrentLimit) refused++
    }
    return refused
  },
}

function maxTorrents(protocol: 'udp' | 'http' | 'ws'): Attack {
  return {
    name: 'held.max-torrents',
    server: protocol,
    workers: 'any',
    fast: true,
    budgetS: 40,
    async run(ctx) {
      const t = await ctx.tracker({protocol, config: {limits: {max_torrents: MAX_TORRENTS}}})
      const refused = await floods[protocol](ctx, t.port)
      const m = await t.metrics()
      const perWorker = (m?.get('tracker_torrents') ?? []).map(s => s.value)
      const read = perWorker.length > 0
      const counted = (await t.metric('tracker_refusals_total', {reason: 'torrent_limit'})) ?? 0
      const total = perWorker.reduce((a, b) => a + b, 0)
      return {
        held: read && perWorker.every(n => n <= MAX_TORRENTS) && refused === FLOOD - total && counted === refused,
        evidence: `${FLOOD} unique info hashes, max_torrents ${MAX_TORRENTS}: torrents held ${perWorker.join('+') || '?'}, ${refused} refused, torrent_limit refusals ${counted}`,
      }
    },
  }
}

export const HELD_TCP_ATTACKS: Attack[] = [
  slowloris('http'),
  slowloris('ws'),
  frameBombs('batched'),
  frameBombs('node'),
  wsMaxConnections,
  maxTorrents('udp'),
  maxTorrents('http'),
  maxTorrents('ws'),
]
